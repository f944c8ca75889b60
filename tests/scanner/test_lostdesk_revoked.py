"""A revoked desk run headless: it wipes its data (the store's enrollment and records, the key that
sealed its credential) and says so in one line, with a non-zero exit status and no traceback —
whether the revocation reaches it through a scan or through its sync loop, PIN or not."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import Harness

from scanner.desks import enrolled_desk, frame, revoke, sell, tickets_scanner
from scanner_app.core import texts
from scanner_app.io import vault
from scanner_app.io.sqlite_store import SqliteDeskStore


@pytest.mark.parametrize("pin", ["", "13579"], ids=["no-pin", "pin"])
async def test_lostdesk_a_revoked_desk_headless_wipes_and_says_so(
    harness: Harness, tmp_path: Path, pin: str
) -> None:
    sale = await sell(harness, 2)
    data = tmp_path / "desk"
    core = await enrolled_desk(harness, data, [sale.main_list], pin=pin or None)
    assert (await core.scan(sale.token(0))).online
    assert core.enrollment is not None
    await core.close()
    await revoke(harness, core.enrollment.device_id)

    frames = tmp_path / "frames"
    frames.mkdir()
    for n in range(2):
        cv2.imwrite(str(frames / f"{n}.png"), frame(sale.token(n), np.random.default_rng(n)))
    status, out, err = await tickets_scanner(data, "--headless", "--source", str(frames), SCANNER_PIN=pin)
    assert status == 3, err
    assert err.splitlines() == [texts.REVOKED] and "Traceback" not in out + err
    assert not (data / vault.KEY_FILE).exists()
    store = SqliteDeskStore(data / "scanner.sqlite3")
    try:
        assert store.enrollment() is None and store.setting("credential") is None and store.records() == []
    finally:
        store.close()
    # Nothing left to run: the wiped desk is simply not enrolled.
    status, _, err = await tickets_scanner(data, "--headless", "--source", str(frames))
    assert status == 2 and "not enrolled" in err and "Traceback" not in err
