"""The event graph: a ``community.lexicon.calendar.event`` record read by its AT-URI.

DID → DID document (the service's resolver, local folder first) → the ``#atproto_pds`` endpoint →
``com.atproto.repo.getRecord``. The answer's CID is checked against the record's own DAG-CBOR
encoding, so the pinned CID is one this service verified. Real-world records are read
defensively: unknown fields are ignored, bare ``status``/``mode`` values (``"scheduled"``) are
read as the lexicon's tokens, a name longer than a ticketed event's title is cut on a grapheme
boundary, and only the fields the service uses are validated against the pinned lexicon. The
record's ``locations`` become a short place text (:mod:`server.atproto.place`), skipping
what cannot be read rather than refusing the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from server.atproto.cid import NotInDataModel, record_cid
from server.atproto.client import PdsClient, PdsError, XrpcError, pds_endpoint
from server.atproto.datetimes import parse_optional_datetime
from server.atproto.place import place_text
from server.atproto.text import clip
from server.atproto.uri import parse_record_uri
from server.auth.did import DidResolutionError, DidResolver
from server.errors import EventRecordNotFound, InvalidEventRecord, InvalidRequest

CALENDAR_EVENT = "community.lexicon.calendar.event"
GET_RECORD = "com.atproto.repo.getRecord"
# A ticketed event's title fits the eventView limits.
TITLE_MAX_GRAPHEMES = 300
TITLE_MAX_BYTES = 3000
# The fields the service reads; the rest of a record is never looked at.
_READ_FIELDS = ("$type", "name", "createdAt", "startsAt", "endsAt", "status", "mode")
_TOKEN_FIELDS = ("status", "mode")


class RecordValidator(Protocol):
    def validate_record(self, nsid: str, record: object) -> None: ...


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """What the service takes from a calendar event record, and the version it read."""

    uri: str
    cid: str
    title: str
    starts_ms: int | None
    ends_ms: int | None
    status: str | None
    mode: str | None
    # Where it takes place, as text (``locations`` is read defensively, outside the validation).
    place: str | None = None


@dataclass(frozen=True, slots=True)
class Unresolved:
    """The record could not be read. ``transient``: its DID or PDS could not be reached, so a later
    try may work; otherwise the URI cannot name a readable calendar event."""

    reason: str
    transient: bool


def _token(value: object) -> object:
    """``"scheduled"`` (older apps) → ``"community.lexicon.calendar.event#scheduled"``."""
    if isinstance(value, str) and value and "#" not in value and "." not in value:
        return f"{CALENDAR_EVENT}#{value}"
    return value


def read_calendar_event(uri: str, cid: str, value: object, validator: RecordValidator) -> CalendarEvent:
    """The service's view of a calendar event record, or :class:`InvalidEventRecord` saying why not."""
    if not isinstance(value, dict):
        raise InvalidEventRecord(f"{uri} is not a record object")
    record_type = value.get("$type", CALENDAR_EVENT)
    if record_type != CALENDAR_EVENT:
        raise InvalidEventRecord(f"{uri} is a {record_type!r} record, not a {CALENDAR_EVENT}")
    read: dict[str, Any] = {name: value[name] for name in _READ_FIELDS if name in value}
    for name in _TOKEN_FIELDS:
        if name in read:
            read[name] = _token(read[name])
    try:
        validator.validate_record(CALENDAR_EVENT, read)
    except InvalidRequest as exc:
        raise InvalidEventRecord(f"{uri} is not a valid {CALENDAR_EVENT}: {exc.message}") from None
    title = clip(read["name"].strip(), TITLE_MAX_GRAPHEMES, TITLE_MAX_BYTES)
    if not title:
        raise InvalidEventRecord(f"{uri} is not a valid {CALENDAR_EVENT}: its name is empty")
    return CalendarEvent(
        uri=uri,
        cid=cid,
        title=title,
        starts_ms=parse_optional_datetime(read.get("startsAt"), "startsAt"),
        ends_ms=parse_optional_datetime(read.get("endsAt"), "endsAt"),
        status=read.get("status"),
        mode=read.get("mode"),
        place=place_text(value.get("locations")),
    )


class EventGraph:
    """Reads calendar event records from their PDS."""

    def __init__(self, resolver: DidResolver, client: PdsClient, validator: RecordValidator) -> None:
        self._resolver = resolver
        self._client = client
        self._validator = validator

    async def pds_of(self, did: str) -> str:
        """The PDS endpoint of ``did``; raises :class:`DidResolutionError`."""
        endpoint = pds_endpoint(await self._resolver.resolve(did))
        if endpoint is None:
            raise DidResolutionError(f"the DID document of {did} names no #atproto_pds service")
        return endpoint

    async def resolve(self, uri: str) -> CalendarEvent | Unresolved:
        """The record at ``uri`` as it is now. A record the PDS says is not there raises
        :class:`EventRecordNotFound`; one that is not a usable calendar event raises
        :class:`InvalidEventRecord`; anything else that stops the service from reading it
        answers :class:`Unresolved`."""
        parsed = parse_record_uri(uri)
        if parsed is None or parsed.collection != CALENDAR_EVENT:
            return Unresolved(f"{uri} does not name a {CALENDAR_EVENT} record", transient=False)
        if not parsed.repo_is_did:
            return Unresolved(f"{uri} names its repository by handle; only DIDs are resolved", False)
        try:
            endpoint = await self.pds_of(parsed.repo)
        except DidResolutionError as exc:
            return Unresolved(f"resolving {parsed.repo}: {exc}", transient=True)
        try:
            answer = await self._client.query(
                endpoint,
                GET_RECORD,
                {"repo": parsed.repo, "collection": parsed.collection, "rkey": parsed.rkey},
            )
        except XrpcError as exc:
            if exc.error in ("RecordNotFound", "RepoNotFound"):
                raise EventRecordNotFound(f"{uri} does not exist on its PDS") from None
            return Unresolved(f"reading {uri}: {exc.message}", exc.transient)
        except PdsError as exc:
            return Unresolved(f"reading {uri}: {exc.message}", exc.transient)
        return self._verified(uri, answer)

    def _verified(self, uri: str, answer: dict[str, Any]) -> CalendarEvent:
        cid, value = answer.get("cid"), answer.get("value")
        if not isinstance(cid, str) or not isinstance(value, dict):
            raise InvalidEventRecord(f"the PDS answered {uri} without a record and its CID")
        try:
            actual = record_cid(value)
        except NotInDataModel as exc:
            raise InvalidEventRecord(f"{uri} is not in the atproto data model: {exc}") from None
        if actual != cid:
            raise InvalidEventRecord(f"the PDS answered {uri} with a record that does not match CID {cid}")
        return read_calendar_event(uri, cid, value, self._validator)
