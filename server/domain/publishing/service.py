"""Publishing an event's public records into its organizer's repository.

The operator switches publishing on for an event (``tickets publish``); from then on every catalog
change of the event bumps its publication's version in the change's own transaction, and the
publisher (the background worker in every server process, or the command) brings the repository
up to date: it builds the records the catalog calls for now, writes those whose CID differs from
the one last written (``putRecord`` with ``swapRecord``), and deletes those the catalog no longer
has. A pass that finds nothing changed writes nothing. A publication is claimed with a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two processes never publish one event at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update

from server.atproto.cid import record_cid
from server.atproto.client import PdsClient, PdsError, XrpcError
from server.atproto.eventgraph import EventGraph, RecordValidator, Unresolved
from server.atproto.session import AccountSession, Tokens
from server.atproto.uri import parse_record_uri
from server.auth.did import DidResolutionError
from server.db.engine import Database
from server.db.lease import lease_rows
from server.db.models import (
    CapacityGroup,
    CheckInList,
    Event,
    EventPublication,
    EventRecordPin,
    Offer,
    PublishedRecord,
    Tier,
)
from server.domain.catalog.service import pin_record
from server.domain.common import Clock
from server.domain.publishing import accounts
from server.domain.publishing.records import (
    CAPACITY_GROUP,
    CHECK_IN_LIST,
    PUBLIC_OFFER,
    TICKET_TIER,
    TICKETED_EVENT,
    StrongRef,
    capacity_group_record,
    check_in_list_record,
    public_offer_record,
    record_key,
    ticket_tier_record,
    ticketed_event_record,
)
from server.domain.publishing.rules import refs_in_scope, retry_delay_ms, unwanted
from server.errors import DomainError, EventNotFound, InvalidRequest, PublishFailed
from server.settings import Settings

if TYPE_CHECKING:
    import httpx

    from server.auth.did import DidResolver

log = logging.getLogger("tickets.publishing")

PUT_RECORD = "com.atproto.repo.putRecord"
DELETE_RECORD = "com.atproto.repo.deleteRecord"
GET_RECORD = "com.atproto.repo.getRecord"
LEASE_MS = 5 * 60_000


@dataclass
class PublishReport:
    """What one pass did, by record URI."""

    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Catalog:
    """The rows an event's records are built from, read in one transaction."""

    event: Event
    pin: EventRecordPin | None
    groups: list[CapacityGroup]
    tiers: list[Tier]
    lists: list[CheckInList]
    offers: list[Offer]
    published: dict[tuple[str, str], PublishedRecord]


@dataclass
class Publisher:
    db: Database
    graph: EventGraph
    client: PdsClient
    sealer: accounts.Sealer
    validator: RecordValidator
    service_did: str
    clock: Clock
    # A failed publication is due again after retry_base_ms, doubling with each failure in a row
    # up to retry_cap_ms.
    retry_base_ms: int = 10_000
    retry_cap_ms: int = 3_600_000

    # --- the publication row ---------------------------------------------------------------------

    async def claim(self, event_id: str) -> int:
        """Switch publishing on for ``event_id`` if it is not, and claim it now: answers the version
        to publish."""
        now = self.clock.now_ms()
        async with self.db.write() as session:
            event = await session.get(Event, event_id)
            if event is None:
                raise EventNotFound(f"event {event_id} is not ticketed here")
            publication = await session.get(EventPublication, event_id, with_for_update=True)
            if publication is None:
                publication = EventPublication(
                    event_id=event_id,
                    organizer_did=event.organizer_did,
                    version=1,
                    published_version=0,
                    attempts=0,
                    created_ms=now,
                )
                session.add(publication)
            publication.next_attempt_ms = now + LEASE_MS
            return publication.version

    async def claim_due(self, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` publications behind their version and due, claimed for a lease. Looking
        is a read: only when something is due does it take a write transaction."""
        now = self.clock.now_ms()
        due = (
            select(EventPublication.event_id, EventPublication.version)
            .where(
                EventPublication.version > EventPublication.published_version,
                EventPublication.next_attempt_ms <= now,
            )
            .order_by(EventPublication.next_attempt_ms)
            .limit(limit)
        )
        async with self.db.read() as session:
            if not (await session.execute(due)).first():
                return []
        async with self.db.write() as session:
            rows = (await session.execute(due.with_for_update(skip_locked=True))).all()
            await lease_rows(
                session, EventPublication.event_id, [row.event_id for row in rows], now + LEASE_MS
            )
        return [(row.event_id, row.version) for row in rows]

    async def give_back(self, event_ids: list[str]) -> None:
        """Make claimed publications due again at once (a stopping worker's unfinished claims);
        one published since is left alone."""
        now = self.clock.now_ms()
        async with self.db.write() as session:
            await session.execute(
                update(EventPublication)
                .where(
                    EventPublication.event_id.in_(event_ids),
                    EventPublication.version > EventPublication.published_version,
                    EventPublication.next_attempt_ms > now,
                )
                .values(next_attempt_ms=now)
                .execution_options(synchronize_session=False)
            )

    async def run(self, event_id: str, version: int) -> PublishReport:
        """Publish a claimed event up to ``version`` and record how it went; a failure is recorded,
        made due again after a backoff, and raised."""
        try:
            report = await self.publish(event_id)
        except (DomainError, PdsError, DidResolutionError) as exc:
            await self._failed(event_id, getattr(exc, "message", str(exc)))
            raise
        async with self.db.write() as session:
            publication = await session.get(EventPublication, event_id, with_for_update=True)
            if publication is not None:
                now = self.clock.now_ms()
                publication.published_version = max(publication.published_version, version)
                publication.attempts = 0
                publication.last_error = None
                publication.published_ms = now
                publication.next_attempt_ms = now
        return report

    async def _failed(self, event_id: str, message: str) -> None:
        async with self.db.write() as session:
            publication = await session.get(EventPublication, event_id, with_for_update=True)
            if publication is not None:
                delay = retry_delay_ms(publication.attempts, self.retry_base_ms, self.retry_cap_ms)
                publication.attempts += 1
                publication.last_error = message[:2000]
                publication.next_attempt_ms = self.clock.now_ms() + delay

    # --- one pass --------------------------------------------------------------------------------

    async def publish(self, event_id: str) -> PublishReport:
        """Bring the event's records in its organizer's repository in step with the catalog."""
        catalog = await self._load(event_id)
        event = catalog.event
        try:
            pds_url = await self.graph.pds_of(event.organizer_did)
        except DidResolutionError as exc:
            raise PublishFailed(f"cannot find the organizer's PDS: {exc}") from None
        async with self.db.read() as session:
            login, tokens = await accounts.load_login(session, self.sealer, event.organizer_did, pds_url)

        async def keep(new: Tokens) -> None:
            async with self.db.write() as session:
                await accounts.store_tokens(
                    session, self.sealer, login.did, pds_url, new, self.clock.now_ms()
                )

        writer = _Writer(self, AccountSession(self.client, pds_url, login, tokens, keep), catalog)
        if event.status != "archived":
            await self._plan(writer, catalog, await self._event_ref(catalog))
        await writer.delete_the_rest()
        return writer.report

    async def _load(self, event_id: str) -> _Catalog:
        async with self.db.read() as session:
            event = await session.get(Event, event_id)
            if event is None:
                raise EventNotFound(f"event {event_id} is not ticketed here")
            groups = await session.scalars(
                select(CapacityGroup)
                .where(
                    CapacityGroup.event_id == event_id,
                    CapacityGroup.implicit.is_(False),
                    CapacityGroup.status == "active",
                )
                .order_by(CapacityGroup.id)
            )
            # A hidden tier has no public record: it exists for buyers only once a code opens it.
            tiers = await session.scalars(
                select(Tier)
                .where(Tier.event_id == event_id, Tier.status != "archived", Tier.visibility != "hidden")
                .order_by(Tier.id)
            )
            lists = await session.scalars(
                select(CheckInList)
                .where(CheckInList.event_id == event_id, CheckInList.status == "active")
                .order_by(CheckInList.id)
            )
            offers = await session.scalars(
                select(Offer)
                .where(Offer.event_id == event_id, Offer.public.is_(True), Offer.status == "active")
                .order_by(Offer.id)
            )
            published = await session.scalars(
                select(PublishedRecord).where(PublishedRecord.event_id == event_id)
            )
            return _Catalog(
                event=event,
                pin=await session.get(EventRecordPin, event_id),
                groups=list(groups),
                tiers=list(tiers),
                lists=list(lists),
                offers=list(offers),
                published={(p.collection, p.rkey): p for p in published},
            )

    async def _event_ref(self, catalog: _Catalog) -> StrongRef:
        """The calendar event as the records name it: its pinned version, read and pinned now if
        the event has no verified pin yet."""
        event, pin = catalog.event, catalog.pin
        if event.cid is not None and pin is not None and pin.cid == event.cid:
            return StrongRef(event.uri, event.cid)
        record = await self.graph.resolve(event.uri)
        if isinstance(record, Unresolved):
            raise PublishFailed(f"the event record has no verified pin and cannot be read: {record.reason}")
        async with self.db.write() as session:
            row = await session.get(Event, event.id)
            assert row is not None
            await pin_record(session, row, record, self.clock.now_ms())
        return StrongRef(event.uri, record.cid)

    async def _plan(self, writer: _Writer, catalog: _Catalog, event_ref: StrongRef) -> None:
        """Every record the catalog calls for, each written after the records it refers to."""
        event = catalog.event
        event_rkey = parse_record_uri(event.uri)
        assert event_rkey is not None  # a pinned event has a record URI
        await writer.put(
            TICKETED_EVENT,
            event_rkey.rkey,
            event.id,
            ticketed_event_record(event, event_ref, self.service_did),
        )
        refs: dict[str, StrongRef] = {}
        for group in catalog.groups:
            refs[group.id] = await writer.put(
                CAPACITY_GROUP,
                record_key(group.id, group.created_ms),
                group.id,
                capacity_group_record(group, event_ref),
            )
        for tier in catalog.tiers:
            app_record = StrongRef.stored(tier.tier_ref)
            if app_record is not None:  # the app publishes this tier's record itself
                refs[tier.id] = app_record
                continue
            refs[tier.id] = await writer.put(
                TICKET_TIER,
                record_key(tier.id, tier.created_ms),
                tier.id,
                ticket_tier_record(tier, event_ref, refs.get(tier.capacity_group_id)),
            )
        for checklist in catalog.lists:
            await writer.put(
                CHECK_IN_LIST,
                record_key(checklist.id, checklist.created_ms),
                checklist.id,
                check_in_list_record(checklist, event_ref, refs_in_scope(checklist.tier_ids, refs)),
            )
        for offer in catalog.offers:
            await writer.put(
                PUBLIC_OFFER,
                record_key(offer.id, offer.created_ms),
                offer.id,
                public_offer_record(offer, event_ref, refs_in_scope(offer.tier_ids, refs)),
            )


class _Writer:
    """Writes the records of one pass, remembering what it wrote."""

    def __init__(self, publisher: Publisher, account: AccountSession, catalog: _Catalog) -> None:
        self._publisher = publisher
        self._account = account
        self._repo = catalog.event.organizer_did
        self._event_id = catalog.event.id
        self._published = catalog.published
        self._wanted: set[tuple[str, str]] = set()
        self.report = PublishReport()

    async def put(self, collection: str, rkey: str, subject_id: str, record: dict[str, Any]) -> StrongRef:
        """Write ``record`` unless the repository already has exactly it; answers its strongRef."""
        try:
            self._publisher.validator.validate_record(collection, record)
        except InvalidRequest as exc:
            raise PublishFailed(
                f"the {collection} record of {subject_id} is not valid: {exc.message}"
            ) from None
        cid = record_cid(record)
        key = (collection, rkey)
        self._wanted.add(key)
        uri = f"at://{self._repo}/{collection}/{rkey}"
        previous = self._published.get(key)
        if previous is not None and previous.cid == cid:
            self.report.unchanged.append(uri)
            return StrongRef(uri, cid)
        body: dict[str, Any] = {"repo": self._repo, "collection": collection, "rkey": rkey, "record": record}
        if previous is not None:
            body["swapRecord"] = previous.cid
        try:
            answer = await self._account.procedure(PUT_RECORD, body)
        except XrpcError as exc:
            if exc.error != "InvalidSwap":
                raise
            answer = await self._replace_changed(body, cid)
        written = answer.get("cid")
        if not isinstance(written, str):
            raise PublishFailed(f"the PDS answered putRecord for {uri} without a CID")
        await self._remember(collection, rkey, subject_id, written)
        self.report.written.append(uri)
        return StrongRef(uri, written)

    async def _replace_changed(self, body: dict[str, Any], cid: str) -> dict[str, Any]:
        """The record was changed (or removed) outside this service since it was last written: the
        catalog is the source of truth, so it is written again over what is there now."""
        current = await self._current_cid(body["collection"], body["rkey"])
        if current == cid:
            return {"cid": cid}
        log.warning(
            "%s/%s was changed outside this service; writing it again", body["collection"], body["rkey"]
        )
        retry = {k: v for k, v in body.items() if k != "swapRecord"}
        if current is not None:
            retry["swapRecord"] = current
        return await self._account.procedure(PUT_RECORD, retry)

    async def _current_cid(self, collection: str, rkey: str) -> str | None:
        try:
            answer = await self._publisher.client.query(
                self._account.pds_url,
                GET_RECORD,
                {"repo": self._repo, "collection": collection, "rkey": rkey},
            )
        except XrpcError as exc:
            if exc.error == "RecordNotFound":
                return None
            raise
        cid = answer.get("cid")
        return cid if isinstance(cid, str) else None

    async def _remember(self, collection: str, rkey: str, subject_id: str, cid: str) -> None:
        async with self._publisher.db.write() as session:
            await session.merge(
                PublishedRecord(
                    repo=self._repo,
                    collection=collection,
                    rkey=rkey,
                    event_id=self._event_id,
                    subject_id=subject_id,
                    cid=cid,
                    published_ms=self._publisher.clock.now_ms(),
                )
            )

    async def delete_the_rest(self) -> None:
        """Delete the records written earlier that the catalog no longer calls for."""
        for collection, rkey in unwanted(self._published, self._wanted):
            row = self._published[(collection, rkey)]
            body = {"repo": self._repo, "collection": collection, "rkey": rkey, "swapRecord": row.cid}
            try:
                await self._account.procedure(DELETE_RECORD, body)
            except XrpcError as exc:
                if exc.error != "InvalidSwap":
                    raise
                body.pop("swapRecord")
                await self._account.procedure(DELETE_RECORD, body)
            async with self._publisher.db.write() as session:
                await session.execute(
                    delete(PublishedRecord).where(
                        PublishedRecord.repo == self._repo,
                        PublishedRecord.collection == collection,
                        PublishedRecord.rkey == rkey,
                    )
                )
            self.report.deleted.append(f"at://{self._repo}/{collection}/{rkey}")


def atproto_parts(
    settings: Settings,
    db: Database,
    resolver: DidResolver,
    http: httpx.AsyncClient,
    validator: RecordValidator,
    server_key: bytes,
    clock: Clock,
) -> tuple[EventGraph, Publisher]:
    """The event graph (reading calendar event records) and the publisher (writing the public
    records), sharing one XRPC client."""
    client = PdsClient(
        http,
        timeout=settings.pds_timeout_seconds,
        max_response_bytes=settings.pds_max_response_bytes,
        allow_http=settings.pds_allow_http,
    )
    graph = EventGraph(resolver, client, validator)
    publisher = Publisher(
        db,
        graph,
        client,
        accounts.Sealer(server_key),
        validator,
        settings.service_did,
        clock,
        retry_base_ms=int(settings.publish_retry_base_seconds * 1000),
        retry_cap_ms=int(settings.publish_retry_cap_seconds * 1000),
    )
    return graph, publisher
