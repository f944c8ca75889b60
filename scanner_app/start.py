"""The one place a desk is assembled: its adapters (:mod:`scanner_app.io`) built and handed to its
core. The command line, the headless command and the screen all open their desk here."""

from __future__ import annotations

from scanner_app.core.config import ScannerSettings
from scanner_app.core.desk import DeskCore
from scanner_app.core.ports import DeskClock
from scanner_app.io.http_peer import HttpPeers
from scanner_app.io.sqlite_store import SqliteDeskStore
from scanner_app.io.system import SYSTEM_DESK_CLOCK, RandomIds
from scanner_app.io.vault import PinRequired, SecretBoxVault, WrongPin


async def open_desk(
    settings: ScannerSettings, pin: str | None = None, *, clock: DeskClock = SYSTEM_DESK_CLOCK
) -> DeskCore:
    """The desk of ``settings``, loaded; ``pin`` (default: the settings' PIN) opens its credential.
    Raises :class:`~scanner_app.io.vault.PinRequired` or :class:`~scanner_app.io.vault.WrongPin`
    when the credential is sealed with a PIN."""
    store = SqliteDeskStore(settings.database_path)
    vault = SecretBoxVault(settings.data_dir, settings.desk_pin() if pin is None else pin)
    core = DeskCore(settings, store, vault, HttpPeers(), clock, RandomIds(clock))
    try:
        core.load()
    except (PinRequired, WrongPin):
        store.close()
        raise
    return core
