"""Record CIDs, defensive reading of calendar event records, record keys, and the guard that no
private field can ever reach a public record."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, BigInteger, Boolean, Integer, LargeBinary, inspect

from server.atproto.cid import NotInDataModel, cid_of_bytes, record_cid
from server.atproto.eventgraph import CALENDAR_EVENT, read_calendar_event
from server.atproto.text import clip
from server.db.models import CapacityGroup, CheckInList, Event, Offer, Tier
from server.domain.publishing.records import (
    StrongRef,
    capacity_group_record,
    check_in_list_record,
    public_offer_record,
    record_key,
    ticket_tier_record,
    ticketed_event_record,
)
from server.errors import InvalidEventRecord
from server.xrpc.lexicon import LEXICON_DIR, Lexicons
from server.xrpc.lexicon.formats import grapheme_length, is_tid

LEXICONS = Lexicons.load(LEXICON_DIR)
URI = f"at://did:plc:organizerpdsaaaaaaaaaaaa/{CALENDAR_EVENT}/3kevent000001"
CID = "bafyreiehtzjqj5j66ci65tvcv4kvuluvbohaqokq4be3zasjazwr7mts3i"

# --- CIDs ----------------------------------------------------------------------------------------


def test_record_cids_match_records_on_the_network() -> None:
    """Two records and their CIDs as a PDS published them, and the DAG-CBOR fixture ``[2]``."""
    follow = {
        "$type": "app.bsky.graph.follow",
        "createdAt": "2024-11-14T22:25:15.192Z",
        "subject": "did:plc:2yyvfdwxchw7tgfwcgsfalc4",
    }
    assert record_cid(follow) == "bafyreiehtzjqj5j66ci65tvcv4kvuluvbohaqokq4be3zasjazwr7mts3i"
    parent = {
        "cid": "bafyreih5td23qnracb2prdz6rvaxhwe3di65p6mcex6jmtaprprtwxthmy",
        "uri": "at://did:plc:oamcq4k7hlvmy76nurpl2vdh/app.bsky.feed.post/3lawvol3nfk2f",
    }
    reply = {
        "$type": "app.bsky.feed.post",
        "createdAt": "2024-11-14T22:25:15.778Z",
        "langs": ["en"],
        "reply": {"parent": parent, "root": parent},
        "text": "Far too qualified and intelligent",
    }
    assert record_cid(reply) == "bafyreifsghszkqvli53yj7v43sgbacqaq6lck73otcradmwrsv5scb22fu"
    assert (
        cid_of_bytes(bytes.fromhex("8102")) == "bafyreihdb57fdysx5h35urvxz64ros7zvywshber7id6t6c6fek37jgyfe"
    )


def test_links_and_bytes_are_not_strings() -> None:
    as_link = record_cid({"ref": {"$link": CID}})
    assert as_link != record_cid({"ref": CID})
    assert record_cid({"b": {"$bytes": "AAEC"}}) != record_cid({"b": "AAEC"})


@pytest.mark.parametrize(
    "value",
    [{"x": 1.5}, {"ref": {"$link": "not-a-cid"}}, {"b": {"$bytes": "!!"}}, {"n": 2**64}],
    ids=["float", "bad link", "bad bytes", "integer too large"],
)
def test_values_outside_the_data_model(value: dict[str, Any]) -> None:
    with pytest.raises(NotInDataModel):
        record_cid(value)


# --- reading calendar event records -------------------------------------------------------------


def test_clip_cuts_on_grapheme_boundaries() -> None:
    assert clip("short", 300, 3000) == "short"
    assert clip("e\u0301" * 5, 3, 3000) == "e\u0301" * 3  # a base and its combining accent stay together
    assert clip("👍🏽" * 10, 100, 17) == "👍🏽" * 2  # 8 bytes each: a third would exceed 17
    assert grapheme_length(clip("ab" * 400, 300, 3000)) == 300


def test_real_world_records_are_read_defensively() -> None:
    record = {
        "$type": CALENDAR_EVENT,
        "name": "  Night market  ",
        "createdAt": "2026-09-01T10:00:00Z",
        "startsAt": "2026-12-05T18:00:00+01:00",
        "status": "scheduled",
        "mode": "hybrid",
        "uris": "not even a list",  # a field the service does not read is not looked at
        "futureField": {"nested": [1, 2, 3]},
    }
    event = read_calendar_event(URI, CID, record, LEXICONS)
    assert (event.title, event.cid, event.ends_ms) == ("Night market", CID, None)
    assert event.starts_ms == 1_796_490_000_000  # 17:00 UTC
    assert event.status == f"{CALENDAR_EVENT}#scheduled"
    assert event.mode == f"{CALENDAR_EVENT}#hybrid"
    no_type = {k: v for k, v in record.items() if k != "$type"}
    assert read_calendar_event(URI, CID, no_type, LEXICONS).title == "Night market"


@pytest.mark.parametrize(
    "record",
    [
        [],
        {"name": "x"},
        {"name": None, "createdAt": "2026-09-01T10:00:00Z"},
        {"name": "x", "createdAt": "yesterday"},
        {"name": "x", "createdAt": "2026-09-01T10:00:00Z", "endsAt": 1764954000},
        {"name": "x", "createdAt": "2026-09-01T10:00:00Z", "status": 3},
        {"$type": "app.bsky.feed.post", "name": "x", "createdAt": "2026-09-01T10:00:00Z"},
        {"name": " ", "createdAt": "2026-09-01T10:00:00Z"},
    ],
)
def test_malformed_records(record: Any) -> None:
    with pytest.raises(InvalidEventRecord) as caught:
        read_calendar_event(URI, CID, record, LEXICONS)
    assert URI in caught.value.message


# --- record keys ---------------------------------------------------------------------------------


@given(st.text(min_size=1, max_size=40), st.integers(0, 2**44))
def test_record_keys_are_stable_tids(our_id: str, created_ms: int) -> None:
    key = record_key(our_id, created_ms)
    assert is_tid(key)
    assert key == record_key(our_id, created_ms)
    assert key != record_key(our_id + "x", created_ms) or our_id == our_id + "x"


def test_record_keys_sort_by_creation() -> None:
    keys = [record_key(f"tier_{n}", 1_764_954_000_000 + n) for n in range(50)]
    assert keys == sorted(keys)


# --- the private-field guard ---------------------------------------------------------------------

# The only columns a public record may show; every other column of these tables is private.
PUBLIC_COLUMNS = {
    Event: {"uri", "created_ms"},
    CapacityGroup: {"name", "created_ms"},
    Tier: {
        "title", "description", "unit_amount", "currency", "product_ref", "price_ref",
        "sale_starts_ms", "sale_ends_ms", "max_per_order", "visibility", "created_ms",
    },
    CheckInList: {"name", "description", "created_ms"},
    Offer: {
        "name", "kind", "description", "discount_percent", "discount_amount", "currency", "starts_ms",
        "ends_ms", "code", "created_ms",
    },
}  # fmt: skip
# Private numbers are all far above any public one, and written with digits (0, 1, 8, 9) that no
# CID or record key contains.
SENTINEL_NUMBER = 9_180_000_000


def scalars(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from scalars(item)
    else:
        yield value


def private_value(column_type: Any, n: int, marker: str) -> Any:
    """A value for a private column that could be recognized anywhere in a record."""
    if isinstance(column_type, Boolean):
        return n % 2 == 0
    if isinstance(column_type, Integer | BigInteger):
        return SENTINEL_NUMBER + n
    if isinstance(column_type, LargeBinary):
        return f"{marker}{n}".encode()
    if isinstance(column_type, JSON):
        return {"secret": f"{marker}{n}", "list": [f"{marker}{n}"]}
    return f"{marker}{n}"


def row(model: type[Any], public: dict[str, Any], marker: str) -> Any:
    values = {}
    for n, attribute in enumerate(inspect(model).column_attrs):
        if attribute.key in PUBLIC_COLUMNS[model]:
            values[attribute.key] = public[attribute.key]
        else:
            values[attribute.key] = private_value(attribute.columns[0].type, n, marker)
    return model(**values)


# NUL never gets past the lexicon validator at the boundary, so no record is built with one (nor a
# lone surrogate, which UTF-8 cannot encode: the codec leaves them out).
texts = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"),
    min_size=1,
    max_size=60,
)
times = st.integers(1_600_000_000_000, 4_000_000_000_000)
strong_ref = st.builds(
    lambda rkey, extra: {
        "uri": f"at://did:plc:atmpaymentsaaaaaaaaaaaaa/money.atmosphere.product/{rkey}",
        "cid": CID,
        **extra,
    },
    st.from_regex(r"[a-z2-7]{13}", fullmatch=True),
    st.dictionaries(st.sampled_from(["note", "secretCode", "sold"]), st.just("PRIVATE-EXTRA"), max_size=2),
)


@settings(max_examples=150, deadline=None)
@given(
    marker=st.from_regex(r"PRIVATE[A-Z]{6}", fullmatch=True),
    title=texts,
    description=st.none() | texts,
    amount=st.integers(0, 2_000_000),
    currency=st.sampled_from(["eur", "usd", "jpy"]),
    max_per_order=st.integers(1, 50),
    created=times,
    sale=st.tuples(st.none() | times, st.none() | times),
    refs=st.tuples(st.none() | strong_ref, st.none() | strong_ref),
    in_group=st.booleans(),
    list_tiers=st.none() | st.integers(0, 3),
    visibility=st.sampled_from(["public", "unlisted"]),
    discount=st.sampled_from(["percent", "amount", "none"]),
)
def test_no_private_field_can_reach_a_public_record(
    marker: str,
    title: str,
    description: str | None,
    amount: int,
    currency: str,
    max_per_order: int,
    created: int,
    sale: tuple[int | None, int | None],
    refs: tuple[dict[str, Any] | None, dict[str, Any] | None],
    in_group: bool,
    list_tiers: int | None,
    visibility: str,
    discount: str,
) -> None:
    """Rows whose every private column holds a recognizable value (counters, capacities, holds'
    and tickets' ids, app ids and organizer DIDs, metadata, keys and flags): the records built from
    them hold none of those values, only properties their lexicon declares, and validate."""
    event = row(Event, {"uri": URI, "created_ms": created}, marker)
    group = row(CapacityGroup, {"name": title, "created_ms": created}, marker)
    tier = row(
        Tier,
        {
            "title": title,
            "description": description,
            "unit_amount": amount,
            "currency": currency,
            "product_ref": refs[0],
            "price_ref": refs[1],
            "sale_starts_ms": sale[0],
            "sale_ends_ms": sale[1],
            "max_per_order": max_per_order,
            "visibility": visibility,
            "created_ms": created,
        },
        marker,
    )
    offer = row(
        Offer,
        {
            "name": title,
            "kind": "presale",
            "description": description,
            "discount_percent": max_per_order if discount == "percent" else None,
            "discount_amount": amount if discount == "amount" else None,
            "currency": currency if discount == "amount" else None,
            "starts_ms": sale[0],
            "ends_ms": sale[1],
            "code": "EARLY-BIRD",
            "created_ms": created,
        },
        marker,
    )
    checklist = row(CheckInList, {"name": title, "description": description, "created_ms": created}, marker)
    event_ref = StrongRef(URI, CID)
    group_ref = StrongRef(
        f"at://did:plc:x/tickets.atmosphere.capacityGroup/{record_key(group.id, created)}", CID
    )
    tier_ref = StrongRef(f"at://did:plc:x/tickets.atmosphere.ticketTier/{record_key(tier.id, created)}", CID)
    records = [
        ticketed_event_record(event, event_ref, "did:web:tickets.test"),
        capacity_group_record(group, event_ref),
        ticket_tier_record(tier, event_ref, group_ref if in_group else None),
        check_in_list_record(checklist, event_ref, None if list_tiers is None else [tier_ref] * list_tiers),
        public_offer_record(offer, event_ref, None if list_tiers is None else [tier_ref] * list_tiers),
    ]
    for record in records:
        text = json.dumps(record, ensure_ascii=False)
        assert marker not in text and "PRIVATE-EXTRA" not in text
        assert re.search(r"91800\d{5}", text) is None
        assert not any(isinstance(value, bool) for value in scalars(record))  # no flag is ever public
        declared = LEXICONS.document(record["$type"])["defs"]["main"]["record"]["properties"]  # type: ignore[index]
        assert set(record) <= {"$type", *declared}
        if grapheme_length(title) <= 200 and (description is None or grapheme_length(description) <= 3000):
            LEXICONS.validate_record(record["$type"], record)
