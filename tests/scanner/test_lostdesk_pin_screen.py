"""The screen of a desk locked with a PIN: it asks for the PIN first, refuses a wrong one and asks
again, and with the right one opens the desk where it was left."""

from __future__ import annotations

from pathlib import Path

from conftest import Harness

from scanner.desks import desk_settings, enrolled_desk, sell
from scanner.test_ui import SIZE, text_of, until
from scanner_app.ui.app import ScannerApp
from scanner_app.ui.screens.pin import PinScreen
from scanner_app.ui.screens.scanning import ScanningScreen

PIN = "905721"


async def test_lostdesk_the_screen_asks_for_the_pin(harness: Harness, tmp_path: Path) -> None:
    sale = await sell(harness, 1)
    folder = tmp_path / "desk"
    await (await enrolled_desk(harness, folder, [sale.main_list], pin=PIN)).close()
    app = ScannerApp(desk_settings(folder))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: isinstance(app.screen, PinScreen))
        assert "locked with a PIN" in text_of(pilot, "#problem")
        await pilot.press(*"123456", "enter")
        await until(
            pilot, lambda: isinstance(app.screen, PinScreen) and "wrong PIN" in text_of(pilot, "#problem")
        )
        await pilot.press(*PIN, "enter")
        await until(pilot, lambda: isinstance(app.screen, ScanningScreen))
        assert app.sub_title == "North door" and app.desk.enrolled
