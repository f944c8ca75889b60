"""Secret files the server makes for itself in its data folder, once, whatever the number of
processes starting at the same moment."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's bytes; when it does not exist, ``make()`` written to it (readable by its owner
    only). The content is written to a private temporary file first and then linked into place, so
    a process starting beside another one sees the whole key or none, never a half-written file,
    and the first link wins for every process."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(descriptor, "wb") as handle:  # mkstemp makes it 0600
                handle.write(make())
                handle.flush()
                os.fsync(handle.fileno())
            with contextlib.suppress(FileExistsError):  # another process linked its key first
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path.read_bytes()
