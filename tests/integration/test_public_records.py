"""Public records end to end: ``tickets organizer login`` and ``tickets publish`` (the real command
line) write an event's catalog into the organizer's repository on the PDS stand-in; the server's
publisher keeps it in step as tiers and lists change, renewing its session when it expires; an
unchanged catalog writes nothing."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from conftest import Harness
from support.pds import (
    CALENDAR,
    ORGANIZER,
    ORGANIZER_HANDLE,
    ORGANIZER_PASSWORD,
    LocalPds,
    calendar_event,
    uri_of,
)
from support.serve_process import tickets_command
from support.server import LEXICONS, SERVICE_DID

PUT = "com.atproto.repo.putRecord"
NS = "tickets.atmosphere."


async def tickets(harness: Harness, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    return await tickets_command(harness.settings, *argv, stdin=stdin)


def repository(pds: LocalPds) -> dict[tuple[str, str], dict[str, Any]]:
    """The organizer's records in our collections, by (collection, rkey), with their CIDs."""
    return {
        (collection, rkey): {"cid": stored.cid, **stored.value}
        for (repo, collection, rkey), stored in pds.records.items()
        if repo == ORGANIZER and collection.startswith(NS)
    }


def of_kind(records: dict[tuple[str, str], dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {rkey: record for (collection, rkey), record in records.items() if collection == NS + kind}


async def until(predicate: Any, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "the publisher did not catch up"
        await asyncio.sleep(0.05)


async def catalog(harness: Harness, pds: LocalPds) -> dict[str, Any]:
    """A ticketed event with a shared hall (two tiers), a tier with its own pool, a VIP door list,
    and a guest's hold with an email: private data the records must never show."""
    pds.put(ORGANIZER, CALENDAR, "3kgala0000001", calendar_event("Winter gala"))
    event = (
        await harness.app.ok(
            "createTicketEvent",
            {"organizerDid": ORGANIZER, "event": {"uri": uri_of("3kgala0000001")}, "status": "active"},
        )
    )["event"]
    ref = {"uri": event["uri"]}
    hall = await harness.app.ok(
        "createCapacityGroup", {"organizerDid": ORGANIZER, "event": ref, "name": "Hall", "totalCapacity": 300}
    )
    tiers = {}
    for title, amount, group in (
        ("General", 2500, hall["capacityGroup"]["id"]),
        ("VIP", 9000, hall["capacityGroup"]["id"]),
        ("Student", 1200, None),
    ):
        body = {
            "organizerDid": ORGANIZER,
            "event": ref,
            "title": title,
            "currency": "eur",
            "unitAmount": amount,
            "quantityTotal": 100,
            "metadata": {"internalNote": "do-not-publish-metadata"},
            **({"capacityGroupId": group} if group else {}),
        }
        tiers[title] = (await harness.app.ok("createTicketTier", body))["tier"]["id"]
    door = await harness.app.ok(
        "createCheckInList", {"eventId": event["id"], "name": "VIP door", "tierIds": [tiers["VIP"]]}
    )
    hold = await harness.app.ok(
        "createTicketHold",
        {"items": [{"tierId": tiers["General"], "quantity": 2}], "customerEmail": "guest@private.test"},
    )
    return {"event": event, "hall": hall["capacityGroup"]["id"], "tiers": tiers, "door": door, "hold": hold}


async def test_publish_then_keep_in_step(harness: Harness, pds: LocalPds) -> None:
    made = await catalog(harness, pds)
    event_id = made["event"]["id"]

    code, out, err = await tickets(
        harness,
        *("organizer", "login", "--did", ORGANIZER, "--identifier", ORGANIZER_HANDLE, "--password-stdin"),
        stdin=ORGANIZER_PASSWORD + "\n",
    )
    assert code == 0, err
    assert ORGANIZER_PASSWORD not in out + err
    code, out, err = await tickets(harness, "publish", "--event", event_id)
    assert code == 0, err
    assert out.count("written ") == 7 and "unchanged" not in out

    records = repository(pds)
    for (collection, _), record in records.items():
        LEXICONS.validate_record(collection, {k: v for k, v in record.items() if k != "cid"})
    pinned = {"uri": made["event"]["uri"], "cid": made["event"]["cid"]}
    backlink = records[(NS + "ticketedEvent", "3kgala0000001")]  # keyed like the event record
    assert (backlink["event"], backlink["service"]) == (pinned, SERVICE_DID)
    groups = of_kind(records, "capacityGroup")
    assert [g["name"] for g in groups.values()] == ["Hall"]  # the Student tier's own pool is not shown
    ((hall_rkey, hall),) = groups.items()
    hall_ref = {"uri": uri_of(hall_rkey, collection=NS + "capacityGroup"), "cid": hall["cid"]}
    by_title = {t["title"]: (rkey, t) for rkey, t in of_kind(records, "ticketTier").items()}
    assert set(by_title) == {"General", "VIP", "Student"}
    assert by_title["General"][1]["capacityGroup"] == hall_ref
    assert "capacityGroup" not in by_title["Student"][1]
    assert by_title["VIP"][1]["priceAmount"] == {"amount": 9000, "currency": "eur"}
    lists = {record["name"]: record for record in of_kind(records, "checkInList").values()}
    vip_rkey, vip = by_title["VIP"]
    assert lists["VIP door"]["tiers"] == [
        {"uri": uri_of(vip_rkey, collection=NS + "ticketTier"), "cid": vip["cid"]}
    ]
    assert "tiers" not in lists["Main entrance"]  # the default list admits every tier
    text = json.dumps(list(records.values()))
    for private in (made["hold"]["holdId"], made["hold"]["token"], "guest@private.test", "do-not-publish"):
        assert private not in text

    # Publishing again with nothing changed writes nothing.
    puts = pds.count(PUT)
    code, out, _ = await tickets(harness, "publish", "--event", event_id)
    assert code == 0 and out.count("unchanged ") == 7 and "written " not in out
    assert pds.count(PUT) == puts

    # A changed tier: the server rewrites it (new CID) and the list that names it, nothing else.
    await harness.app.ok("updateTicketTier", {"tierId": made["tiers"]["VIP"], "title": "VIP lounge"})
    tier_key = (NS + "ticketTier", vip_rkey)
    await until(lambda: pds.get(ORGANIZER, *tier_key).value["title"] == "VIP lounge")  # type: ignore[union-attr]
    await until(lambda: pds.count(PUT) == puts + 2)
    after = repository(pds)
    assert after[tier_key]["cid"] != vip["cid"]
    changed = {key for key in after if after[key]["cid"] != records[key]["cid"]}
    door_key = next(key for key, record in after.items() if record.get("name") == "VIP door")
    assert changed == {tier_key, door_key}
    assert after[door_key]["tiers"][0]["cid"] == after[tier_key]["cid"]

    # An archived tier's record is deleted.
    await harness.app.ok("archiveTicketTier", {"tierId": made["tiers"]["Student"]})
    student_key = (NS + "ticketTier", by_title["Student"][0])
    await until(lambda: pds.get(ORGANIZER, *student_key) is None)


async def test_the_session_is_renewed_when_it_expires(harness: Harness, pds: LocalPds) -> None:
    made = await catalog(harness, pds)
    login = ("organizer", "login", "--did", ORGANIZER, "--identifier", ORGANIZER_HANDLE, "--password-stdin")
    assert (await tickets(harness, *login, stdin=ORGANIZER_PASSWORD))[0] == 0
    assert (await tickets(harness, "publish", "--event", made["event"]["id"]))[0] == 0
    assert (
        pds.count("com.atproto.server.createSession"),
        pds.count("com.atproto.server.refreshSession"),
    ) == (1, 0)

    async def rename(title: str) -> None:
        await harness.app.ok("updateTicketTier", {"tierId": made["tiers"]["General"], "title": title})
        await until(lambda: any(r.get("title") == title for r in repository(pds).values()))

    pds.advance(pds.access_ttl_s + 1)  # the access token expired: the session is refreshed
    await rename("General admission")
    assert (
        pds.count("com.atproto.server.createSession"),
        pds.count("com.atproto.server.refreshSession"),
    ) == (1, 1)

    pds.advance(pds.refresh_ttl_s + 1)  # both expired: the publisher logs in again with the app password
    await rename("Standing")
    assert pds.count("com.atproto.server.createSession") == 2


async def test_publishing_needs_an_organizer_login(harness: Harness, pds: LocalPds) -> None:
    made = await catalog(harness, pds)
    code, _, err = await tickets(harness, "publish", "--event", made["event"]["id"])
    assert code != 0
    assert "tickets organizer login" in err
    assert pds.count(PUT) == 0

    code, _, err = await tickets(
        harness,
        *("organizer", "login", "--did", ORGANIZER, "--identifier", ORGANIZER_HANDLE, "--password-stdin"),
        stdin="wrong-password",
    )
    assert code != 0 and "Invalid identifier or password" in err


async def test_public_offers_are_published_and_private_codes_and_hidden_tiers_never(
    harness: Harness, pds: LocalPds
) -> None:
    made = await catalog(harness, pds)
    event_id = made["event"]["id"]
    hidden = await harness.app.ok(
        "createTicketTier",
        {
            "organizerDid": ORGANIZER,
            "event": {"uri": made["event"]["uri"]},
            "title": "Friends of the band",
            "currency": "eur",
            "unitAmount": 1500,
            "quantityTotal": 20,
            "visibility": "hidden",
        },
    )
    early = await harness.app.ok(
        "createOffer",
        {
            "eventId": event_id,
            "name": "Early bird",
            "kind": "discount",
            "code": "EARLYBIRD",
            "public": True,
            "discountPercent": 15,
            "tierIds": [made["tiers"]["General"]],
            "maxRedemptions": 50,
            "maxPerBuyer": 2,
        },
    )
    await harness.app.ok(
        "createOffer",
        {
            "eventId": event_id,
            "name": "Crew",
            "kind": "discount",
            "code": "CREW-ONLY-7731",
            "discountPercent": 100,
        },
    )
    await harness.app.ok(
        "createOffer",
        {
            "eventId": event_id,
            "name": "Friends presale",
            "kind": "presale",
            "code": "FRIENDS",
            "public": True,
            "tierIds": [hidden["tier"]["id"]],
        },
    )
    login = ("organizer", "login", "--did", ORGANIZER, "--identifier", ORGANIZER_HANDLE, "--password-stdin")
    assert (await tickets(harness, *login, stdin=ORGANIZER_PASSWORD))[0] == 0
    code, _, err = await tickets(harness, "publish", "--event", event_id)
    assert code == 0, err

    records = repository(pds)
    offers = {record["name"]: record for record in of_kind(records, "publicOffer").values()}
    assert set(offers) == {"Early bird", "Friends presale"}  # the private code has no record
    general_rkey = next(rkey for rkey, t in of_kind(records, "ticketTier").items() if t["title"] == "General")
    general = of_kind(records, "ticketTier")[general_rkey]
    assert offers["Early bird"]["tiers"] == [
        {"uri": uri_of(general_rkey, collection=NS + "ticketTier"), "cid": general["cid"]}
    ]
    assert (offers["Early bird"]["code"], offers["Early bird"]["discountPercent"]) == ("EARLYBIRD", 15)
    assert offers["Friends presale"]["tiers"] == []  # it opens a hidden tier, which has no record
    assert "Friends of the band" not in {t["title"] for t in of_kind(records, "ticketTier").values()}
    text = json.dumps(list(records.values()))
    assert "CREW-ONLY-7731" not in text  # caps and redemptions are no record fields either:
    shown = {"$type", "cid", "event", "name", "kind", "tiers", "discountPercent", "code", "createdAt"}
    assert all(set(offer) <= shown for offer in offers.values())
    for (collection, _), record in records.items():
        LEXICONS.validate_record(collection, {k: v for k, v in record.items() if k != "cid"})

    # Archiving the offer removes its record; the server's publisher does it on its own.
    await harness.app.ok("updateOffer", {"offerId": early["offer"]["id"], "status": "archived"})
    await until(
        lambda: "Early bird" not in {r["name"] for r in of_kind(repository(pds), "publicOffer").values()}
    )
