"""The floor: the least a server of our stack can do for a hold on this machine.

The same ASGI server and event loop as ``tickets serve`` (uvicorn with httptools and uvloop, one
process per worker, each on a listening socket of its own: ``server.http_server.listen``),
Litestar and asyncpg, and nothing else: ``POST /hold`` does what a hold must do at least in one
database round trip, a call of the server-side function below (lock the capacity group's row,
count the places its unexpired holds take, check, insert the hold), and ``GET /empty`` answers
``{}`` without the database. ``python -m bench.floor_server --port P --workers N`` serves it on the
PostgreSQL database named by ``TICKETS_FLOOR_DATABASE``; :mod:`bench.floor` measures it.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from litestar import Litestar, Response, get, post
from litestar.datastructures import State

from server.http_server import listen, run

DATABASE_VARIABLE = "TICKETS_FLOOR_DATABASE"
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
"""
)

HOLD = "SELECT floor_hold($1, $2, $3)"


@get("/empty")
async def empty() -> dict[str, Any]:
    return {}


@post("/hold")
async def hold(data: dict[str, Any], state: State) -> Response[dict[str, Any]]:
    hold_id = await state.pool.fetchval(HOLD, data["groupId"], data["quantity"], int(time.time() * 1000))
    if hold_id is None:
        return Response({"error": "SoldOut", "message": "not enough places left"}, status_code=409)
    return Response({"holdId": hold_id}, status_code=200)


@asynccontextmanager
async def database(app: Litestar) -> AsyncIterator[None]:
    async with asyncpg.create_pool(os.environ[DATABASE_VARIABLE], min_size=1, max_size=POOL_SIZE) as pool:
        app.state.pool = pool
        yield


def create_app() -> Litestar:
    return Litestar(
        route_handlers=[empty, hold],
        lifespan=[database],
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
