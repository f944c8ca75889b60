"""The registry: a compiled set of lexicon documents, looked up by NSID and validated against."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, cast

from server.xrpc.lexicon.compiler import Compiler, Method, compile_document
from server.xrpc.lexicon.nodes import LexiconValidationError, Node, fail
from server.xrpc.lexicon.syntax import LexiconLoadError, MethodSchema, read_documents
from server.xrpc.transport import MethodNotImplemented

# The lexicons ship inside the package: ``server/lexicons`` links to the repository's ``lexicons/``,
# and the wheel carries the documents themselves.
LEXICON_DIR: Final = Path(__file__).resolve().parents[2] / "lexicons"


class Lexicons:
    """A compiled set of lexicon documents: looks up methods and validates values against them."""

    def __init__(self, documents: Iterable[object]) -> None:
        """Compiles parsed lexicon documents; raises :class:`LexiconLoadError` for a bad one."""
        compiler = Compiler()
        self._documents: dict[str, dict[str, object]] = {}
        self._methods: dict[str, Method] = {}
        self._records: dict[str, Node] = {}
        seen: set[str] = set()
        for document in documents:
            lexicon_id = compile_document(compiler, document, self._methods, self._records)
            if lexicon_id in seen:
                raise LexiconLoadError(f"{lexicon_id}: defined by two documents", lexicon_id)
            seen.add(lexicon_id)
            self._documents[lexicon_id] = cast(dict[str, object], document)
        compiler.link()
        self._method_nsids = frozenset(self._methods)

    @classmethod
    def load(cls, root: Path) -> Lexicons:
        """Loads every ``*.json`` file under ``root``; errors name the offending file."""
        documents = read_documents(root)
        try:
            return cls(document for _, document in documents.values())
        except LexiconLoadError as exc:
            path = documents[exc.lexicon_id][0] if exc.lexicon_id in documents else root
            raise LexiconLoadError(f"{path}: {exc}", exc.lexicon_id) from exc

    def method(self, nsid: str) -> MethodSchema | None:
        """The query or procedure ``nsid``, or None when no loaded lexicon declares it."""
        method = self._methods.get(nsid)
        return None if method is None else method.schema

    def method_nsids(self) -> frozenset[str]:
        return self._method_nsids

    def document(self, nsid: str) -> dict[str, object] | None:
        """The lexicon document ``nsid`` as loaded, for publishing."""
        return self._documents.get(nsid)

    def _method(self, nsid: str) -> Method:
        method = self._methods.get(nsid)
        if method is None:
            raise MethodNotImplemented(f"method {nsid} is not declared by any lexicon")
        return method

    def validate_params(self, nsid: str, params: Mapping[str, str | list[str]]) -> dict[str, object]:
        """Coerces query-string values to their declared types and checks them; unknown ones are dropped."""
        compiled = self._method(nsid).params
        return {} if compiled is None else compiled.check(params)

    def validate_input(self, nsid: str, body: object) -> dict[str, object]:
        """Checks a procedure's JSON body; answers it with declared defaults filled in (no input: {})."""
        compiled = self._method(nsid).input
        if compiled is None:
            return {}
        if not isinstance(body, dict):
            raise fail("Input", "must be an object")
        return cast(dict[str, object], compiled.check(body, "Input"))

    def validate_output(self, nsid: str, body: object) -> None:
        """Checks a method's JSON answer; a failure here is a fault of this service, not the caller."""
        compiled = self._method(nsid).output
        if compiled is not None:
            compiled.check(body, "Output")

    def validate_record(self, nsid: str, record: object) -> None:
        """Checks a record of the collection ``nsid``; its ``$type``, when present, must be ``nsid``."""
        compiled = self._records.get(nsid)
        if compiled is None:
            raise LexiconValidationError(f"Record type {nsid} is not declared by any lexicon")
        if isinstance(record, dict) and record.get("$type", nsid) != nsid:
            raise fail("Record/$type", f'must be "{nsid}"')
        compiled.check(record, "Record")
