"""Multikey encoding, raw ECDSA signatures and the signing keys of server.auth."""

from __future__ import annotations

import base64

import libipld
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from server.auth.multikey import (
    JwtAlg,
    MultikeyError,
    PublicKey,
    curve_order,
    decode_multikey,
    encode_multikey,
)
from server.auth.signing import SigningKey

ALGS: list[JwtAlg] = ["ES256K", "ES256"]

# W3C did:key test vectors (w3c-ccg/did-method-key test-vectors/secp256k1.json and
# nist-curves.json), as also used by the atproto reference implementation: private key -> did:key.
SECP256K1_VECTORS = [
    (
        "9085d2bef69286a6cbb51623c8fa258629945cd55ca705cc4e66700396894e0c",
        "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
    ),
    (
        "f0f4df55a2b3ff13051ea814a8f24ad00f2e469af73c363ac7e9fb999a9072ed",
        "did:key:zQ3shtxV1FrJfhqE1dvxYRcCknWNjHc3c5X1y3ZSoPDi2aur2",
    ),
    (
        "6b0b91287ae3348f8c2f2552d766f30e3604867e34adc37ccbb74a8e6b893e02",
        "did:key:zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N",
    ),
    (
        "c0a6a7c560d37d7ba81ecee9543721ff48fea3e0fb827d42c1868226540fac15",
        "did:key:zQ3shadCps5JLAHcZiuX5YUtWHHL8ysBJqFLWvjZDKAWUBGzy",
    ),
    (
        "175a232d440be1e0788f25488a73d9416c04b6f924bea6354bf05dd2f1a75133",
        "did:key:zQ3shptjE6JwdkeKN4fcpnYQY3m9Cet3NiHdAfpvSUZBFoKBj",
    ),
]
P256_PRIVATE_KEY_B58 = "9p4VRzdmhsnq869vQjVCTrRry7u4TtfRxhvBFJTGU2Cp"
P256_DID_KEY = "did:key:zDnaeTiq1PdzvZXUaMdezchcMJQpBdH2VN4pgrrEhMCCbmwSb"

# atproto crypto signature fixtures: message (DAG-CBOR of {"hello": "world"}), did:key, and a
# valid low-S signature together with its high-S twin, which must be refused.
FIXTURE_MESSAGE = "oWVoZWxsb2V3b3JsZA"
SIGNATURE_FIXTURES = [
    (
        "ES256",
        "zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo",
        "2vZNsG3UKvvO/CDlrdvyZRISOFylinBh0Jupc6KcWoJWExHptCfduPleDbG3rko3YZnn9Lw0IjpixVmexJDegg",
        "2vZNsG3UKvvO/CDlrdvyZRISOFylinBh0Jupc6KcWoKp7O4VS9giSAah8k5IUbXIW00SuOrjfEqQ9HEkN9JGzw",
    ),
    (
        "ES256K",
        "zQ3shqwJEJyMBsBXCWyCBpUBMqxcon9oHB7mCvx4sSpMdLJwc",
        "5WpdIuEUUfVUYaozsi8G0B3cWO09cgZbIIwg1t2YKdUn/FEznOndsz/qgiYb89zwxYCbB71f7yQK5Lr7NasfoA",
        "5WpdIuEUUfVUYaozsi8G0B3cWO09cgZbIIwg1t2YKdXYA67MYxYiTMAVfdnkDCMN9S5B3vHosRe07aORmoshoQ",
    ),
]


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


# Multikeys are written and read with libipld's multibase codec: base58btc, leading zero bytes as "1".
def test_base58_known_values() -> None:
    assert libipld.encode_multibase("z", b"hello world") == "zStV1DL6CwTryKyV"
    assert libipld.encode_multibase("z", b"\0\0\x01") == "z112"
    assert libipld.encode_multibase("z", b"") == "z"
    assert libipld.decode_multibase("zStV1DL6CwTryKyV") == ("z", b"hello world")
    assert libipld.decode_multibase("z112") == ("z", b"\0\0\x01")


@given(st.binary(max_size=80))
def test_base58_round_trip(data: bytes) -> None:
    assert libipld.decode_multibase(libipld.encode_multibase("z", data)) == ("z", data)


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "abc+", "z z"])
def test_base58_rejects_characters_outside_the_alphabet(bad: str) -> None:
    with pytest.raises(MultikeyError, match="not valid base58btc"):
        decode_multikey("z" + bad)


def assert_matches_did_key(key: SigningKey, did_key: str, alg: str) -> None:
    """``key``'s public multikey is ``did_key``'s, and decodes to the same ``alg`` key and back."""
    multikey = did_key.removeprefix("did:key:")
    assert key.public_multikey == multikey
    decoded = decode_multikey(multikey)
    assert decoded.alg == alg
    assert decoded == key.public_key
    assert encode_multikey(decoded) == multikey


@pytest.mark.parametrize(("seed", "did_key"), SECP256K1_VECTORS)
def test_secp256k1_did_key_vectors(seed: str, did_key: str) -> None:
    key = SigningKey.from_private_bytes(bytes.fromhex(seed), "ES256K")
    assert_matches_did_key(key, did_key, "ES256K")


def test_p256_did_key_vector() -> None:
    key = SigningKey.from_private_bytes(libipld.decode_multibase("z" + P256_PRIVATE_KEY_B58)[1], "ES256")
    assert_matches_did_key(key, P256_DID_KEY, "ES256")


@pytest.mark.parametrize(("alg", "prefix"), [("ES256K", "zQ3s"), ("ES256", "zDna")])
def test_generated_keys_round_trip(alg: JwtAlg, prefix: str) -> None:
    for _ in range(20):
        key = SigningKey.generate(alg)
        multikey = key.public_multikey
        assert multikey.startswith(prefix)
        assert decode_multikey(multikey) == key.public_key
        assert encode_multikey(decode_multikey(multikey)) == multikey


def _multikey(prefix: bytes, point: bytes) -> str:
    return libipld.encode_multibase("z", prefix + point)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "base58btc"),
        ("QmNotMultibase", "base58btc"),
        ("z0OIl", "not valid base58btc"),
        # Ed25519 (0xed01) is a valid Multikey, but not an atproto signing key.
        ("z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "neither"),
        (_multikey(b"\xe7\x01", b"\x02" + b"\x11" * 31), "compressed point"),
        (_multikey(b"\x80\x24", b"\x04" + b"\x11" * 64), "compressed point"),
        (_multikey(b"\xe7\x01", b"\x05" + b"\x11" * 32), "compressed point"),
        # x = 5 is not the x coordinate of any secp256k1 point (5^3 + 7 is a non-residue).
        (_multikey(b"\xe7\x01", b"\x02" + (5).to_bytes(32, "big")), "invalid point"),
        # x = p is outside the field.
        (_multikey(b"\x80\x24", b"\x02" + b"\xff" * 32), "invalid point"),
    ],
)
def test_decode_multikey_rejects(value: str, reason: str) -> None:
    with pytest.raises(MultikeyError, match=reason):
        decode_multikey(value)


def test_public_key_refuses_a_curve_that_does_not_match_its_alg() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1()).public_key()
    with pytest.raises(MultikeyError, match="does not match"):
        PublicKey(key=p256, alg="ES256K")
    with pytest.raises(MultikeyError, match="unsupported curve"):
        PublicKey(key=ec.generate_private_key(ec.SECP384R1()).public_key(), alg="ES256")


@pytest.mark.parametrize(("alg", "multikey", "low_s", "high_s"), SIGNATURE_FIXTURES)
def test_reference_signatures(alg: str, multikey: str, low_s: str, high_s: str) -> None:
    key = decode_multikey(multikey)
    assert key.alg == alg
    message = _b64(FIXTURE_MESSAGE)
    low, high = _b64(low_s), _b64(high_s)
    # The refused fixture is the same signature with s replaced by n - s.
    assert low[:32] == high[:32]
    order = curve_order(key.alg)
    assert int.from_bytes(high[32:], "big") == order - int.from_bytes(low[32:], "big")
    assert key.verify(message, low)
    assert not key.verify(message, high)
    assert not key.verify(message + b"!", low)


@pytest.mark.parametrize("alg", ALGS)
def test_signatures_are_raw_low_s_and_verify(alg: JwtAlg) -> None:
    key = SigningKey.generate(alg)
    half_order = curve_order(key.alg) // 2
    for index in range(50):
        message = f"message {index}".encode()
        signature = key.sign(message)
        assert len(signature) == 64
        assert int.from_bytes(signature[32:], "big") <= half_order
        assert key.public_key.verify(message, signature)
    assert not key.public_key.verify(b"m", b"\0" * 64)
    assert not key.public_key.verify(b"m", key.sign(b"m")[:63])


@pytest.mark.parametrize("alg", ALGS)
def test_signing_key_serialisations_round_trip(alg: JwtAlg) -> None:
    key = SigningKey.generate(alg)
    from_bytes = SigningKey.from_private_bytes(key.private_bytes(), key.alg)
    from_pem = SigningKey.from_pem(key.to_pem().decode())
    for other in (from_bytes, from_pem):
        assert other.alg == key.alg
        assert other.public_multikey == key.public_multikey
        assert key.public_key.verify(b"x", other.sign(b"x"))


def test_signing_key_refuses_bad_private_keys() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        SigningKey.from_private_bytes(b"\x01" * 31)
    with pytest.raises(ValueError, match="private"):
        SigningKey.from_private_bytes(b"\0" * 32)
    with pytest.raises(MultikeyError, match="unsupported curve"):
        SigningKey(ec.generate_private_key(ec.SECP384R1()))


def test_did_document_names_the_key_as_atproto() -> None:
    key = SigningKey.generate()
    did = "did:web:app.example.com"
    document = key.did_document(did)
    assert document["id"] == did
    assert document["verificationMethod"] == [
        {
            "id": f"{did}#atproto",
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": key.public_multikey,
        }
    ]


SECP256K1_SIGNER = SigningKey.generate("ES256K")
SECP256K1_OTHER = SigningKey.generate("ES256K")


@given(message=st.binary(max_size=64), flip=st.integers(0, 64 * 8), other_key=st.booleans())
def test_secp256k1_checks_agree_with_openssl(message: bytes, flip: int, other_key: bool) -> None:
    """ES256K signatures are checked with libsecp256k1; OpenSSL must come to the same answer, for
    genuine signatures, signatures with one bit flipped (``flip`` 512: none) and other keys'."""
    signer = SECP256K1_SIGNER if not other_key else SECP256K1_OTHER
    signature = bytearray(signer.sign(message))
    if flip < 512:
        signature[flip // 8] ^= 1 << (flip % 8)
    public = SECP256K1_SIGNER.public_key
    order = curve_order("ES256K")
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        public.key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
        openssl = 1 <= r < order and 1 <= s <= order // 2
    except (InvalidSignature, ValueError):
        openssl = False
    assert public.verify(message, bytes(signature)) is openssl
