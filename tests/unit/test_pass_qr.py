"""A pass signed for two lists fits a small QR code that the scanner's decoders read back."""

from __future__ import annotations

from pathlib import Path

import pytest
import segno

from sync.passes import ListSigningKey, PassPayload, encode_pass, keys_by_id, verify_for_keys

cv2 = pytest.importorskip("cv2", reason="the scanner extra (opencv-python-headless) is not installed")
zxingcpp = pytest.importorskip("zxingcpp", reason="the scanner extra (zxing-cpp) is not installed")

LISTS = [ListSigningKey.from_seed(bytes([seed]) * 32) for seed in (0xA1, 0xB2)]
PAYLOAD = PassPayload("ticket_01kdvdna0004hmasw9nf6yy093", 3, 1767225600)
TOKEN = encode_pass(PAYLOAD, [key.sign(PAYLOAD) for key in LISTS])


@pytest.fixture(scope="module")
def qr_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    qr = segno.make(TOKEN, error="m", boost_error=False, micro=False)
    assert qr.mode == "alphanumeric"
    assert qr.error == "M"
    assert isinstance(qr.version, int)  # not a Micro QR symbol ("M1"…"M4")
    assert qr.version <= 10, f"two-list pass needs QR version {qr.version}"
    path = tmp_path_factory.mktemp("qr") / "pass.png"
    qr.save(str(path), scale=4, border=4)
    return path


def assert_verifies(text: str) -> None:
    verified = verify_for_keys(text, keys_by_id(key.verify_key() for key in LISTS))
    assert verified.payload == PAYLOAD
    assert verified.key_ids == tuple(key.key_id for key in LISTS)


def test_two_list_pass_is_a_version_9_qr() -> None:
    assert len(TOKEN) == 256
    assert segno.make(TOKEN, error="m", boost_error=False, micro=False).version == 9


def test_zxing_reads_the_pass_back(qr_png: Path) -> None:
    image = cv2.imread(str(qr_png), cv2.IMREAD_GRAYSCALE)
    results = zxingcpp.read_barcodes(image)
    assert [result.text for result in results] == [TOKEN]
    assert_verifies(results[0].text)


def test_zbar_reads_the_pass_back(qr_png: Path) -> None:
    pyzbar = pytest.importorskip("pyzbar.pyzbar", reason="libzbar0 (Debian package) or pyzbar is missing")
    results = pyzbar.decode(cv2.imread(str(qr_png), cv2.IMREAD_GRAYSCALE))
    assert [result.data.decode("ascii") for result in results] == [TOKEN]
    assert_verifies(results[0].data.decode("ascii"))
