"""What a desk knows offline, and how it reads a pass with it: each list's verified bundle (rules,
public keys, sealed ticket index) and every admitted check-in record by ticket.

Reading a pass is decoding it, checking the list's Ed25519 signature and opening the ticket's
sealed entry with the ticket id the pass carries; the door decision itself is
:func:`sync.checkin.decide`, the server's own rule.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scanner_app.core.ports import BundleState
from sync.bundle import BundleError, TicketEntry, TicketIndex
from sync.checkin import ListRules, PassCheck, PriorScan, TicketFacts, is_inside, pass_check
from sync.merge import GroupKey, prior_scans
from sync.passes import (
    DecodedPass,
    ListVerifyKey,
    PassPayload,
    PassRejected,
    decode_pass,
    keys_by_id,
    verify_for_keys,
)
from sync.records import Record


@dataclass
class ListBundle:
    """A list's verified bundle, ready for offline decisions."""

    state: BundleState
    index: TicketIndex
    keys: dict[str, ListVerifyKey] = field(init=False)
    rules: ListRules = field(init=False)
    tiers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        body = self.state.body
        self.keys = bundle_keys(body)
        self.rules = ListRules.from_wire(str(body["checkInListId"]), body["list"])
        self.tiers = dict(body.get("tiers") or {})
        self.index.learn_tiers(self.tiers)

    def find(self, ticket_id: str) -> TicketEntry | None:
        try:
            return self.index.find(ticket_id)
        except BundleError:
            return None

    def signed(self, decoded: DecodedPass) -> bool:
        try:
            verify_for_keys(decoded, self.keys)
        except PassRejected:
            return False
        return True


def bundle_keys(bundle: Mapping[str, Any]) -> dict[str, ListVerifyKey]:
    """The public keys a bundle lists (active and retired: both verify passes)."""
    return keys_by_id(ListVerifyKey(base64.b64decode(key["publicKey"])) for key in bundle["keys"])


@dataclass(frozen=True, slots=True)
class PassReading:
    """A scanned text as this desk can judge it: the signature check against the list's keys, the
    pass, and the ticket as a bundle knows it (opened with the pass's ticket id)."""

    check: PassCheck
    payload: PassPayload | None
    entry: TicketEntry | None


def pass_payload(text: str) -> PassPayload | None:
    """What a pass says (not verified); None when the text is no pass."""
    try:
        return decode_pass(text).payload
    except PassRejected:
        return None


def read_pass(text: str, bundle: ListBundle, others: Iterable[ListBundle] = ()) -> PassReading:
    """Decode and verify ``text`` for ``bundle``'s list. A genuine pass of another list this desk
    holds comes back with that list's entry, so the decision is ``wrong_list``, not ``invalid``."""
    try:
        decoded = decode_pass(text)
    except PassRejected as rejected:
        return PassReading(pass_check(rejected.reason), None, None)
    ticket_id = decoded.payload.ticket_id
    try:
        verify_for_keys(decoded, bundle.keys)
    except PassRejected as rejected:
        check = pass_check(rejected.reason)
        if check is not PassCheck.NOT_SIGNED_FOR_LIST:
            return PassReading(check, decoded.payload, None)
        elsewhere = (other.find(ticket_id) for other in others if other.signed(decoded))
        return PassReading(check, decoded.payload, next(elsewhere, None))
    return PassReading(PassCheck.VALID, decoded.payload, bundle.find(ticket_id))


def ticket_facts(entry: TicketEntry | None) -> TicketFacts | None:
    if entry is None:
        return None
    return TicketFacts(entry.ticket_id, entry.tier_id, entry.status, entry.generation)


class DoorBook:
    """Every admitted record by (list, ticket), and which tickets are inside: the history
    :func:`sync.checkin.decide` needs, kept in memory for the door's pace."""

    def __init__(self) -> None:
        self.admitted: dict[GroupKey, list[Record]] = defaultdict(list)
        self.inside: dict[str, set[str]] = defaultdict(set)

    def add(self, records: Iterable[Record]) -> None:
        touched: set[GroupKey] = set()
        for record in records:
            if record.admitted and record.ticket_id is not None:
                group = (record.list_id, record.ticket_id)
                self.admitted[group].append(record)
                touched.add(group)
        for list_id, ticket_id in touched:
            if is_inside(self.history(list_id, ticket_id)):
                self.inside[list_id].add(ticket_id)
            else:
                self.inside[list_id].discard(ticket_id)

    def history(self, list_id: str, ticket_id: str) -> list[PriorScan]:
        return prior_scans(self.admitted.get((list_id, ticket_id), ()), list_id, ticket_id)
