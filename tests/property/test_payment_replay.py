"""Duplicated, reordered and replayed broker webhooks give exactly one issuance and the same final
state, whatever the order (Hypothesis chooses the copies and the order), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from support.broker import BROKER_SECRET, Delivery, FakeBroker, new_payment_id
from support.payments import tier_with_holds

from server.db.engine import Database
from server.db.models import Payment, Ticket, Tier
from server.domain import apps
from server.domain.caller import Caller
from server.domain.common import SystemClock
from server.domain.issuance.list_keys import Keyring
from server.domain.payments.inbound import receive
from server.settings import Settings

BROKER = FakeBroker()
KEYRING = Keyring(b"k" * 32)


async def scenario(db: Database, caller: Caller, n: int) -> tuple[str, dict[str, str], list[Delivery]]:
    """A tier and three holds, and the broker's story about them: hold 1 paid; hold 2 paid then
    refunded; hold 3's first payment failed, then a second one went through."""
    async with db.write() as session:
        tier_id, made = await tier_with_holds(
            session, caller, str(n), (2, 1, 1), SystemClock().now_ms(), keyring=KEYRING
        )
    tokens = [hold.token for hold in made]
    pay = {name: new_payment_id() for name in ("p1", "p2", "p3", "failed")}

    def paid(token: str, payment: str, amount: int) -> Delivery:
        return BROKER.delivery(
            "payment.completed",
            {"paymentId": payment, "checkoutToken": token, "amount": amount, "currency": "eur"},
        )

    story = [
        paid(tokens[0], pay["p1"], 200),
        paid(tokens[1], pay["p2"], 100),
        BROKER.delivery("payment.refunded", {"paymentId": pay["p2"], "checkoutToken": tokens[1]}),
        BROKER.delivery("payment.failed", {"paymentId": pay["failed"], "checkoutToken": tokens[2]}),
        paid(tokens[2], pay["p3"], 100),
    ]
    return tier_id, {"h1": made[0].id, "h2": made[1].id, "h3": made[2].id}, story


async def final_state(db: Database, tier_id: str, hold_ids: dict[str, str]) -> dict[str, Any]:
    async with db.read() as session:
        state: dict[str, Any] = {}
        for name, hold_id in hold_ids.items():
            counts = await session.execute(
                select(Ticket.status, func.count()).where(Ticket.hold_id == hold_id).group_by(Ticket.status)
            )
            state[name] = dict(counts.all())
        state["sold"] = await session.scalar(select(Tier.sold).where(Tier.id == tier_id))
        state["payments"] = await session.scalar(
            select(func.count()).select_from(Payment).where(Payment.hold_id.in_(list(hold_ids.values())))
        )
    return state


def test_any_delivery_order_gives_one_issuance(database_url: str, tmp_path: Path) -> None:
    config = Settings(data_dir=tmp_path, database_url=database_url, broker_webhook_secret=BROKER_SECRET)
    loop = asyncio.new_event_loop()
    db = Database(database_url)

    async def setup() -> Caller:
        async with db.write() as session:
            app = await apps.register_app(session, did="did:web:replay.example", environment="test", now_ms=0)
            await session.flush()
            return Caller(app.id, app.did, "test")

    caller = loop.run_until_complete(setup())
    examples = iter(range(10_000))

    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    @given(copies=st.lists(st.integers(1, 10), min_size=5, max_size=5), data=st.data())
    def replay(copies: list[int], data: st.DataObject) -> None:
        tier_id, hold_ids, story = loop.run_until_complete(scenario(db, caller, next(examples)))
        sent = [d for d, k in zip(story, copies, strict=True) for _ in range(k)]
        order = data.draw(st.permutations(sent))

        async def deliver_all() -> None:
            for delivery in order:
                reply = await receive(
                    db, KEYRING, config, delivery.body, delivery.headers, SystemClock().now_ms()
                )
                assert reply.status == 200, reply.body

        loop.run_until_complete(deliver_all())
        state = loop.run_until_complete(final_state(db, tier_id, hold_ids))
        assert state["h1"] == {"active": 2}
        assert state["h2"].get("active", 0) == 0 and sum(state["h2"].values()) <= 1
        assert state["h3"] == {"active": 1}
        assert state["sold"] == 3
        assert state["payments"] == 4

    try:
        replay()
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()


async def test_copies_of_one_delivery_at_once_issue_once(database_url: str, tmp_path: Path) -> None:
    """The broker delivering one webhook several times at once, to several server processes (one
    pool each): every copy answers 200, one issues, the others answer its result as duplicates."""
    config = Settings(data_dir=tmp_path, database_url=database_url, broker_webhook_secret=BROKER_SECRET)
    servers = [Database(database_url) for _ in range(3)]
    try:
        async with servers[0].write() as session:
            app = await apps.register_app(session, did="did:web:copies.example", environment="test", now_ms=0)
            await session.flush()
            caller = Caller(app.id, app.did, "test")
        tier_id, hold_ids, story = await scenario(servers[0], caller, 1)
        paid = story[0]
        replies = await asyncio.gather(
            *(
                receive(servers[n % 3], KEYRING, config, paid.body, paid.headers, SystemClock().now_ms())
                for n in range(6)
            )
        )
        assert [r.status for r in replies] == [200] * 6, [r.body for r in replies]
        assert sorted(bool(r.body.get("duplicate")) for r in replies) == [False] + [True] * 5
        assert {r.body["outcome"] for r in replies} == {"issued"}
        state = await final_state(servers[0], tier_id, hold_ids)
        assert state["h1"] == {"active": 2} and state["sold"] == 2 and state["payments"] == 1
    finally:
        await asyncio.gather(*(db.dispose() for db in servers))
