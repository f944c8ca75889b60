"""Lexicon documents as written: reading them from files, typed access to their JSON, and the
grammar of which definition types may appear where.

A malformed document is a :class:`LexiconLoadError` that says where in which document it is.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from server.xrpc.lexicon.nodes import MISSING

JsonObject = Mapping[str, object]


class LexiconLoadError(ValueError):
    """A lexicon document is malformed, or refers to a definition that no loaded document has."""

    def __init__(self, message: str, lexicon_id: str | None = None) -> None:
        super().__init__(message)
        self.lexicon_id = lexicon_id


@dataclass(frozen=True, slots=True)
class MethodSchema:
    """One XRPC method as its lexicon declares it; the mappings are the documents' own JSON."""

    nsid: str
    kind: Literal["query", "procedure"]
    description: str | None
    parameters: JsonObject | None
    input: JsonObject | None
    output: JsonObject | None
    errors: tuple[str, ...]


def read_documents(root: Path) -> dict[str, tuple[Path, object]]:
    """Every ``*.json`` file under ``root``, parsed, with its path, by the document's ``id``; errors
    name the offending file."""
    documents: dict[str, tuple[Path, object]] = {}
    for path in sorted(root.rglob("*.json")):
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise LexiconLoadError(f"{path}: not a readable JSON document ({exc})") from exc
        lexicon_id = document.get("id") if isinstance(document, dict) else None
        if not isinstance(lexicon_id, str):
            raise LexiconLoadError(f'{path}: a lexicon document must be a JSON object with an "id"')
        if lexicon_id in documents:
            raise LexiconLoadError(
                f"{path}: {lexicon_id} is already defined by {documents[lexicon_id][0]}", lexicon_id
            )
        documents[lexicon_id] = (path, document)
    if not documents:
        raise LexiconLoadError(f"{root}: no lexicon documents found")
    return documents


class Schema:
    """Typed, checked access to one JSON object of a lexicon document; errors say where it is."""

    __slots__ = ("data", "lexicon_id", "where")

    def __init__(self, data: object, where: str, lexicon_id: str) -> None:
        if not isinstance(data, dict):
            raise LexiconLoadError(f"{where} must be a JSON object", lexicon_id)
        self.data: dict[str, object] = data
        self.where = where
        self.lexicon_id = lexicon_id

    def error(self, message: str) -> LexiconLoadError:
        return LexiconLoadError(f"{self.where}: {message}", self.lexicon_id)

    def child(self, key: str) -> Schema | None:
        value = self.data.get(key)
        return None if value is None else Schema(value, f"{self.where}/{key}", self.lexicon_id)

    def string(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.error(f'"{key}" must be a string')
        return value

    def required_string(self, key: str) -> str:
        value = self.string(key)
        if value is None:
            raise self.error(f'"{key}" is required')
        return value

    def integer(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is not None and type(value) is not int:
            raise self.error(f'"{key}" must be an integer')
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is not None and type(value) is not bool:
            raise self.error(f'"{key}" must be a boolean')
        return value

    def strings(self, key: str) -> list[str] | None:
        value = self.data.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise self.error(f'"{key}" must be an array of strings')
        return value

    def integers(self, key: str) -> list[int] | None:
        value = self.data.get(key)
        if value is not None and not (isinstance(value, list) and all(type(v) is int for v in value)):
            raise self.error(f'"{key}" must be an array of integers')
        return value

    def scalar(self, key: str, kind: type[object]) -> object:
        """A ``default`` or ``const`` value, which must have the field's own type."""
        value = self.data.get(key, MISSING)
        if value is not MISSING and type(value) is not kind:
            raise self.error(f'"{key}" must be a {kind.__name__}')
        return value


FIELD_TYPES: Final = frozenset(
    {"null", "boolean", "integer", "string", "bytes", "cid-link", "blob", "array", "object", "ref",
     "union", "unknown", "token"}
)  # fmt: skip
BODY_SCHEMA_TYPES: Final = frozenset({"object", "ref", "union"})
METHOD_TYPES: Final = frozenset({"query", "procedure"})
PRIMARY_TYPES: Final = METHOD_TYPES | {"record"}
RECORD_KEY_TYPES: Final = frozenset({"tid", "nsid", "any"})


def full_ref(ref: str, lexicon_id: str) -> str:
    """``#x`` → ``<lexicon_id>#x``; ``a.b.c`` → ``a.b.c#main``."""
    if ref.startswith("#"):
        return f"{lexicon_id}{ref}"
    return ref if "#" in ref else f"{ref}#main"
