"""Desk scanner settings, read from ``SCANNER_*`` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/atmosphere-tickets-scanner`` (or ``~/.local/share/atmosphere-tickets-scanner``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "atmosphere-tickets-scanner"


class ScannerSettings(BaseSettings):
    """Everything a desk needs to know about itself; the enrollment lives in its local store."""

    model_config = SettingsConfigDict(env_prefix="SCANNER_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    # A scan asks the server first and decides offline when no answer comes within this time.
    online_timeout_seconds: float = Field(default=0.4, gt=0)
    # Sync rounds (upload, pull, probe the server); a scan starts one at once.
    sync_interval_seconds: float = Field(default=2.0, gt=0)
    # Timeout of the sync calls (a full bundle of a large list takes a while).
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    bundle_refresh_seconds: float = Field(default=30.0, gt=0)
    # Door staff are warned when the offline bundle is older than this.
    max_bundle_age_seconds: float = Field(default=900.0, gt=0)
    upload_batch_size: int = Field(default=1000, ge=1, le=1000)
    decoder: Literal["zxing", "pyzbar"] = "zxing"
    # The keyboard-wedge scanner: what ends a code (Enter, Tab, or a suffix it is set to send), and
    # a prefix it is set to send first (then only text after the prefix is read as a scan).
    wedge_terminator: Literal["enter", "tab"] = "enter"
    wedge_prefix: str = ""
    wedge_suffix: str = ""
    # The same pass shown again at the same desk this soon after its admission is "just admitted"
    # (nothing new is recorded), not a second entry.
    representation_seconds: float = Field(default=10.0, ge=0)
    # After a failed call the desk decides offline and probes the server in the background: a hung
    # server costs one timeout, not one per scan. Connecting gets this long.
    connect_timeout_seconds: float = Field(default=0.5, gt=0)
    # The deadline of a probe of the server and of every call to a hub desk: a dead or hung hub
    # shows within about this long. While the server is unreachable and a hub is set, rounds run
    # at least every hub_interval_seconds.
    probe_timeout_seconds: float = Field(default=0.8, gt=0)
    hub_interval_seconds: float = Field(default=0.3, gt=0)
    # A sound on each decision: one bell for admit, two for attention, three for refuse (False: none).
    sound: bool = True
    # Run on each decision instead of the bells, with the verdict (admit, refuse, attention) as its
    # last argument (for example a player script); when it fails (no player, no audio device) the
    # desk rings the bells instead.
    sound_command: str | None = None
    # The result goes back to "Scan a ticket" after this many seconds (0: it stays until the next).
    clear_after_seconds: float = Field(default=8.0, ge=0)
    # Kiosk PIN: when set, changing the list or gate, undo and the desk's setup ask for it.
    kiosk_pin: SecretStr | None = None
    # Hub mode: the port this desk serves other desks on, and the token they must send
    # (empty: one is generated and kept in the local store).
    hub_port: int = Field(default=8765, ge=0, le=65535)
    hub_token: str = ""
    # The desk PIN that seals the credential at rest (chosen at enrollment, asked at every start):
    # a file holding it (its first line), or the PIN itself. Without either the screen asks for it.
    pin_file: Path | None = None
    pin: SecretStr | None = None

    def desk_pin(self) -> str | None:
        """The PIN from ``pin_file`` or ``pin``; None when neither is set."""
        if self.pin_file is not None:
            lines = self.pin_file.read_text().splitlines()
            return lines[0].strip() if lines else None
        return None if self.pin is None else self.pin.get_secret_value()

    @property
    def database_path(self) -> Path:
        return self.data_dir / "scanner.sqlite3"


@lru_cache(maxsize=1)
def get_settings() -> ScannerSettings:
    return ScannerSettings()
