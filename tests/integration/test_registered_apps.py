"""What a process remembers of the registered apps: their settings (fees, where their events go),
kept by the app row's ``updated_ms`` that every token's spend answers, read again only after the
app changed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from server.auth.service_jwt import ServiceJwtClaims
from server.db.engine import Database
from server.domain import apps
from server.domain.caller import AppSettings
from server.domain.offers.pricing import NO_FEES, Fees

DID = "did:web:fees.example"


def token(jti: str) -> ServiceJwtClaims:
    return ServiceJwtClaims(
        iss=DID, aud="did:web:tickets.test", lxm=None, exp=2_000_000_000, iat=None, jti=jti
    )


async def test_settings_are_read_again_only_after_the_app_changed(database_url: str) -> None:
    db = Database(database_url)
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("SELECT") and "WHERE apps.id =" in statement:  # not set_fees' reads
            reads.append(statement)

    event.listen(db.read_engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.write() as session:
            app_id = (await apps.register_app(session, did=DID, environment="test", now_ms=0)).id
        remembered = apps.RegisteredApps()

        async def spend_and_read(jti: str) -> AppSettings:
            version = await db.autocommit(lambda driver: apps.spend_token(driver, app_id, token(jti)))
            return await remembered.settings(db, app_id, version)

        assert await spend_and_read("a") == AppSettings(NO_FEES, None)
        assert await spend_and_read("b") == AppSettings(NO_FEES, None)
        assert len(reads) == 1  # the second call remembered them

        # Changed twice within the same millisecond (here 0), as another process would:
        # each change moves the row's version on, and the next call reads the fees again.
        for fees in (Fees(bps=250, flat=30, to_buyer=True), Fees(bps=100, flat=0, to_buyer=False)):
            async with db.write() as session:
                await apps.set_fees(session, DID, "test", fees, 0)
            assert (await spend_and_read(f"after {fees.bps}")).fees == fees
        async with db.write() as session:
            await apps.register_app(
                session, did=DID, environment="test", now_ms=0, webhook_url="https://hooks.example/in"
            )
        assert (await spend_and_read("hooked")).destination == "https://hooks.example/in"
        assert len(reads) == 4
    finally:
        await db.dispose()


async def test_every_change_moves_the_version_on(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.write() as session:
            app = await apps.register_app(session, did=DID, environment="test", now_ms=1_000)
            first = app.updated_ms
            await apps.set_fees(session, DID, "test", Fees(bps=1, flat=0, to_buyer=False), 1_000)
            second = app.updated_ms
            await apps.disable_app(session, DID, "test", 999)  # a clock set back
            third = app.updated_ms
            await apps.register_app(session, did=DID, environment="test", now_ms=5_000)
        assert (first, second, third, app.updated_ms) == (1_000, 1_001, 1_002, 5_000)
    finally:
        await db.dispose()
