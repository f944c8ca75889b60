"""AT-URIs of records: ``at://<repo>/<collection>/<rkey>``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RecordUri:
    repo: str
    collection: str
    rkey: str

    def __str__(self) -> str:
        return f"at://{self.repo}/{self.collection}/{self.rkey}"

    @property
    def repo_is_did(self) -> bool:
        return self.repo.startswith("did:")


def parse_record_uri(uri: str) -> RecordUri | None:
    """The parts of an AT-URI that names one record, or None when it names anything else (a repo,
    a collection, a fragment). The syntax of each part is checked at the XRPC boundary."""
    if not uri.startswith("at://") or "#" in uri or "?" in uri:
        return None
    parts = uri.removeprefix("at://").split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return RecordUri(*parts)
