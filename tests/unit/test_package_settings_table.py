"""docs/operations.md documents every setting of the server and the desk scanner, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic_settings import BaseSettings

from scanner_app.core.config import ScannerSettings
from server.settings import Settings

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
VARIABLE = re.compile(r"`((?:TICKETS|SCANNER)_[A-Z0-9_]+)`")


def documented() -> set[str]:
    """The variables named in the first column of the guide's tables."""
    names: set[str] = set()
    for line in OPERATIONS.read_text().splitlines():
        if line.startswith("|"):
            names |= set(VARIABLE.findall(line.split("|")[1]))
    return names


def variables(settings: type[BaseSettings]) -> set[str]:
    prefix = settings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in settings.model_fields}


def test_every_setting_is_documented() -> None:
    missing = (variables(Settings) | variables(ScannerSettings)) - documented()
    assert missing == set(), f"settings without a row in docs/operations.md: {sorted(missing)}"


def test_nothing_is_documented_that_does_not_exist() -> None:
    unknown = documented() - variables(Settings) - variables(ScannerSettings)
    assert unknown == set(), f"rows of docs/operations.md that are no setting: {sorted(unknown)}"


def test_the_table_is_read() -> None:
    assert {"TICKETS_DATABASE_URL", "SCANNER_DATA_DIR"} <= documented()
