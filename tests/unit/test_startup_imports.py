"""Every ``tickets`` process pays for the modules it imports before it does anything: the command
line imports what a command needs inside that command, and the server imports the PDF writer only
when it writes a PDF (docs/testing.md). Each check runs in a fresh interpreter, since this one has
imported everything already."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# What ``tickets --help`` needs none of: the web server, the database, HTTP, QR codes, PDF.
HEAVY_FOR_THE_COMMAND_LINE = (
    "alembic",
    "fontTools",
    "fpdf",
    "httpx",
    "litestar",
    "segno",
    "server.app",
    "server.db.models",
    "sqlalchemy",
    "uvicorn",
)


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    shown = "import json, sys; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\n{shown}"], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(out))


def test_the_command_line_parser_imports_no_heavy_module() -> None:
    loaded = modules_after("from server.cli.main import build_parser; build_parser()")
    assert "server.cli.exports" in loaded  # the parser did load every command group
    assert {name for name in HEAVY_FOR_THE_COMMAND_LINE if name in loaded} == set()


@pytest.mark.parametrize("module", ["server.app", "server.domain.exports.service"])
def test_the_server_imports_the_pdf_writer_only_to_write_a_pdf(module: str) -> None:
    loaded = modules_after(f"import {module}")
    assert "server.domain.exports.writers" in loaded
    assert {"fpdf", "fontTools"} & loaded == set()


def test_the_publishing_commands_assemble_the_publisher_without_the_web_app() -> None:
    loaded = modules_after("from server.domain.publishing.service import atproto_parts")
    assert {"litestar", "server.app", "uvicorn"} & loaded == set()
