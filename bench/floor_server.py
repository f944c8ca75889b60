"""The floor: the least a server of our stack can do for a hold on this machine.

The same ASGI server and event loop as ``tickets serve`` (uvicorn with httptools and uvloop, one
process per worker, each on a listening socket of its own: ``server.http_server.listen``),
Litestar and asyncpg, and nothing else: ``POST /hold`` does what a hold must do at least in one
database round trip, a call of the server-side function below (lock the capacity group's row,
count the places its unexpired holds take, check, insert the hold), and ``GET /empty`` answers
``{}`` without the database.

``POST /guarded-hold`` adds the least of what every hold here must also guarantee: the caller's
service-auth JWT checked (its alg, audience, method, expiry and ES256K signature, against a key
known in advance: no DID document to resolve), its ``jti`` spent once for good (a replay is
refused), the calling app still active, and the hold written to an append-only ledger; still in
one round trip. It is what :mod:`bench.floor` calls the guarded hold.

``POST /stepped-hold`` is the guarded hold in the round trips the server's own hold makes, the
rules decided in Python between them: the token spent by a statement of its own, committed at once;
then ``BEGIN``; the group locked and its places counted, in one call (each statement with a snapshot
of its own, as the server's reads sent together); the hold and its ledger row in one statement;
``COMMIT``. What the server's hold costs beyond it is the server's own Python (ADR 0023).

``python -m bench.floor_server --port P --workers N`` serves it on the PostgreSQL database named by
``TICKETS_FLOOR_DATABASE``, trusting the caller's public key ``TICKETS_FLOOR_CALLER_KEY`` (a
Multikey); :mod:`bench.floor` measures it.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State

from bench.xrpc import AUDIENCE
from server.auth.multikey import PublicKey, decode_multikey
from server.http_server import listen, run

DATABASE_VARIABLE = "TICKETS_FLOOR_DATABASE"
CALLER_KEY_VARIABLE = "TICKETS_FLOOR_CALLER_KEY"
# The method a guarded hold's token must name, and the app the floor's caller is registered as.
GUARDED_METHOD = "floor.guardedHold"
CALLER_APP = "floor-app"
POOL_SIZE = 10
HOLD_LIFETIME_MS = 15 * 60 * 1000

# In READ COMMITTED each statement of a PL/pgSQL function takes a new snapshot, so the count after the
# lock sees every hold committed before the lock was granted: no oversell under any concurrency.
SCHEMA = (
    """
CREATE TABLE floor_groups (id text PRIMARY KEY, capacity integer NOT NULL);
CREATE TABLE floor_holds (
    id bigserial PRIMARY KEY,
    group_id text NOT NULL REFERENCES floor_groups (id),
    quantity integer NOT NULL CHECK (quantity >= 1),
    expires_ms bigint NOT NULL
);
CREATE INDEX floor_holds_group_active ON floor_holds (group_id, expires_ms);
CREATE FUNCTION floor_hold(p_group text, p_quantity integer, p_now bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_capacity integer;
    v_held bigint;
    v_id bigint;
BEGIN
    SELECT capacity INTO v_capacity FROM floor_groups WHERE id = p_group FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT coalesce(sum(quantity), 0) INTO v_held
      FROM floor_holds WHERE group_id = p_group AND expires_ms > p_now;
    IF v_held + p_quantity > v_capacity THEN
        RETURN NULL;
    END IF;
    INSERT INTO floor_holds (group_id, quantity, expires_ms)
    VALUES (p_group, p_quantity, p_now + """
    + str(HOLD_LIFETIME_MS)
    + """)
    RETURNING id INTO v_id;
    RETURN v_id;
END $$;
CREATE TABLE floor_apps (id text PRIMARY KEY, did text NOT NULL, active boolean NOT NULL);
CREATE TABLE floor_replays (
    iss text NOT NULL, jti text NOT NULL, exp bigint NOT NULL, PRIMARY KEY (iss, jti)
);
CREATE TABLE floor_ledger (
    id bigserial PRIMARY KEY,
    at_ms bigint NOT NULL,
    subject_id bigint NOT NULL,
    action text NOT NULL,
    data jsonb NOT NULL
);
CREATE FUNCTION floor_guarded_hold(
    p_app text, p_iss text, p_jti text, p_exp bigint, p_group text, p_quantity integer, p_now bigint
) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    INSERT INTO floor_replays (iss, jti, exp)
    SELECT p_iss, p_jti, p_exp FROM floor_apps WHERE id = p_app AND did = p_iss AND active
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN  -- as the server's spend: told apart only when refused
        IF EXISTS (SELECT 1 FROM floor_apps WHERE id = p_app AND did = p_iss AND active) THEN
            RETURN -1;
        END IF;
        RETURN -2;
    END IF;
    v_id := floor_hold(p_group, p_quantity, p_now);
    IF v_id IS NOT NULL THEN
        INSERT INTO floor_ledger (at_ms, subject_id, action, data)
        VALUES (p_now, v_id, 'hold.created', jsonb_build_object('group', p_group, 'quantity', p_quantity));
    END IF;
    RETURN v_id;
END $$;
CREATE FUNCTION floor_locked_count(p_group text, p_now bigint, OUT capacity integer, OUT held bigint)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT g.capacity INTO capacity FROM floor_groups g WHERE g.id = p_group FOR UPDATE;
    SELECT coalesce(sum(h.quantity), 0) INTO held
      FROM floor_holds h WHERE h.group_id = p_group AND h.expires_ms > p_now;
END $$;
"""
)

HOLD = "SELECT floor_hold($1, $2, $3)"
GUARDED_HOLD = "SELECT floor_guarded_hold($1, $2, $3, $4, $5, $6, $7)"
REPLAYED, NOT_ACTIVE, UNAUTHORIZED = -1, -2, -3
# The stepped hold's statements, one round trip each.
SPEND = (
    "INSERT INTO floor_replays (iss, jti, exp) SELECT $2, $3, $4 FROM floor_apps "
    "WHERE id = $1 AND did = $2 AND active ON CONFLICT DO NOTHING RETURNING jti"
)
ACTIVE = "SELECT EXISTS (SELECT 1 FROM floor_apps WHERE id = $1 AND did = $2 AND active)"
LOCKED_COUNT = "SELECT capacity, held FROM floor_locked_count($1, $2)"
HOLD_ROWS = (
    "WITH hold AS (INSERT INTO floor_holds (group_id, quantity, expires_ms) VALUES ($1, $2, $3) "
    "RETURNING id) INSERT INTO floor_ledger (at_ms, subject_id, action, data) "
    "SELECT $4, id, 'hold.created', jsonb_build_object('group', $1::text, 'quantity', $2::integer) "
    "FROM hold RETURNING subject_id"
)


@get("/empty")
async def empty() -> dict[str, Any]:
    return {}


@post("/hold")
async def hold(data: dict[str, Any], state: State) -> Response[dict[str, Any]]:
    hold_id = await state.pool.fetchval(HOLD, data["groupId"], data["quantity"], int(time.time() * 1000))
    if hold_id is None:
        return Response({"error": "SoldOut", "message": "not enough places left"}, status_code=409)
    return Response({"holdId": hold_id}, status_code=200)


def _segment(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _claims(authorization: str, key: PublicKey, now_s: int) -> dict[str, Any] | None:
    """The bearer token's claims, when it is an ES256K token signed by the caller, for this service
    and this method, not expired, with an issuer and an id; else None (malformed ones too)."""
    scheme, _, token = authorization.partition(" ")
    head, _, rest = token.partition(".")
    body, _, signature = rest.partition(".")
    if scheme.lower() != "bearer" or not signature:
        return None
    try:
        if json.loads(_segment(head)).get("alg") != "ES256K":
            return None
        if not key.verify(f"{head}.{body}".encode(), _segment(signature)):
            return None
        claims = json.loads(_segment(body))
    except ValueError:  # bad base64, JSON or UTF-8
        return None
    checked = (
        isinstance(claims, dict)
        and claims.get("aud") == AUDIENCE
        and claims.get("lxm") == GUARDED_METHOD
        and isinstance(claims.get("exp"), int)
        and claims["exp"] > now_s
        and isinstance(claims.get("iss"), str)
        and isinstance(claims.get("jti"), str)
    )
    return claims if checked else None


Holding = Callable[[asyncpg.Pool, dict[str, Any], str, int, int], Awaitable[int | None]]


@post("/guarded-hold")
async def guarded_hold(data: dict[str, Any], request: Request[Any, Any, Any], state: State) -> Response[Any]:
    return await _tokened(_in_one_call, data, request, state)


@post("/stepped-hold")
async def stepped_hold(data: dict[str, Any], request: Request[Any, Any, Any], state: State) -> Response[Any]:
    return await _tokened(_in_steps, data, request, state)


async def _tokened(
    holding: Holding, data: dict[str, Any], request: Request[Any, Any, Any], state: State
) -> Response[dict[str, Any]]:
    """A hold whose caller's token must check, made by ``holding``."""
    now_ms = int(time.time() * 1000)
    claims = _claims(request.headers.get("authorization", ""), state.caller_key, now_ms // 1000)
    if claims is None:
        return _answer(UNAUTHORIZED)
    return _answer(await holding(state.pool, claims, data["groupId"], data["quantity"], now_ms))


async def _in_one_call(
    pool: asyncpg.Pool, claims: dict[str, Any], group: str, quantity: int, now_ms: int
) -> int | None:
    """The guarded hold: one function call."""
    arguments = (claims["iss"], claims["jti"], claims["exp"], group, quantity, now_ms)
    hold_id: int | None = await pool.fetchval(GUARDED_HOLD, CALLER_APP, *arguments)
    return hold_id


async def _in_steps(
    pool: asyncpg.Pool, claims: dict[str, Any], group: str, quantity: int, now_ms: int
) -> int | None:
    """The stepped hold: the spend, ``BEGIN``, the locked count, the rows, ``COMMIT``."""
    async with pool.acquire() as conn:
        if await conn.fetchval(SPEND, CALLER_APP, claims["iss"], claims["jti"], claims["exp"]) is None:
            active = await conn.fetchval(ACTIVE, CALLER_APP, claims["iss"])
            return REPLAYED if active else NOT_ACTIVE
        async with conn.transaction():
            capacity, held = await conn.fetchrow(LOCKED_COUNT, group, now_ms)
            if capacity is None or held + quantity > capacity:
                return None
            hold_id: int = await conn.fetchval(HOLD_ROWS, group, quantity, now_ms + HOLD_LIFETIME_MS, now_ms)
            return hold_id


def _answer(hold_id: int | None) -> Response[dict[str, Any]]:
    """A guarded hold's answer: its id, or why it was refused (the codes of :data:`GUARDED_HOLD`, and
    :data:`UNAUTHORIZED` for a token that does not check)."""
    if hold_id == UNAUTHORIZED:
        return Response({"error": "AuthRequired", "message": "no valid token"}, status_code=401)
    if hold_id == REPLAYED:
        return Response({"error": "TokenReplayed", "message": "this token was used before"}, status_code=401)
    if hold_id == NOT_ACTIVE:
        return Response({"error": "AppNotActive", "message": "the caller may not call"}, status_code=403)
    if hold_id is None:
        return Response({"error": "SoldOut", "message": "not enough places left"}, status_code=409)
    return Response({"holdId": hold_id}, status_code=200)


async def _as_it_is(_connection: asyncpg.Connection) -> None:
    """A connection goes back to the pool as it is. Every request here ends its transaction, takes
    no advisory lock, listens to nothing and sets nothing, so asyncpg's reset of a released
    connection (a round trip of its own, before the request can answer) would undo nothing; the
    server's pool sends none either."""


@asynccontextmanager
async def database(app: Litestar) -> AsyncIterator[None]:
    dsn = os.environ[DATABASE_VARIABLE]
    async with asyncpg.create_pool(dsn, min_size=1, max_size=POOL_SIZE, reset=_as_it_is) as pool:
        app.state.pool = pool
        yield


def create_app() -> Litestar:
    return Litestar(
        route_handlers=[empty, hold, guarded_hold, stepped_hold],
        lifespan=[database],
        state=State({"caller_key": decode_multikey(os.environ[CALLER_KEY_VARIABLE])}),
        debug=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # Listening as ``tickets serve`` does: with several processes, a socket each, so that the
    # kernel spreads the connections between them.
    sockets = listen("127.0.0.1", args.port, args.workers)
    config = uvicorn.Config(
        "bench.floor_server:create_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_level="warning",
    )
    run(config, sockets)


if __name__ == "__main__":
    main()
