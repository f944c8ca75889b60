"""The repository stands on its own: no file (docs, code comments, lexicon descriptions, tests)
names a document that is not in it, and no Markdown link leads out of it."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve()
# Folders that are not the repository's own files.
NOT_OURS = frozenset(
    {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", "build"}
    | {"data", "test-artifacts"}
)
TEXT_SUFFIXES = frozenset(
    {".py", ".md", ".json", ".toml", ".txt", ".mako", ".cfg", ".ini", ".html", ".css", ".js"}
)
TEXT_NAMES = frozenset({"Makefile", "bootstrap", "run"})
# Documents outside the repository, and the places they live.
OUTSIDE = re.compile(r"\bSPEC\b|TARGETS\.md|DESIGN\.md|/work/|\.\./shared/")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def repository_files() -> list[Path]:
    files = []
    for folder, subfolders, names in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in NOT_OURS and not d.endswith(".egg-info")]
        for name in names:
            path = Path(folder) / name
            if not path.is_symlink() and (path.suffix in TEXT_SUFFIXES or name in TEXT_NAMES):
                files.append(path)
    return files


def test_the_walk_sees_the_repository() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in repository_files()}
    assert {
        "docs/operations.md",
        "server/cli/main.py",
        "lexicons/tickets/atmosphere/createTicketHold.json",
    } <= names


def test_no_file_names_a_document_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in repository_files()
        if path != THIS
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert found == [], "\n".join(found)


def test_no_markdown_link_leads_out_of_the_repository() -> None:
    found = []
    for path in repository_files():
        if path.suffix != ".md":
            continue
        for target in LINK.findall(path.read_text()):
            if re.match(r"[a-z]+:|#", target):
                continue  # a web address or an anchor in the same page
            resolved = (path.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                found.append(f"{path.relative_to(ROOT)}: {target}")
    assert found == [], "\n".join(found)
