"""The floor of this machine (:mod:`bench.floor_server`), measured with the same load generator (wrk,
16 in flight) in the same run as the workloads, which :mod:`bench.cli` reports also as ratios to it.

With 1 and with 2 server processes (those the run's configurations use):

* empty: ``GET /empty``, no database;
* hold: one-place holds spread round-robin over 16 capacity groups of 1,000,000;
* guarded hold: as many holds, on 16 groups of their own, each also checking its caller's signed
  token, spending the token once and writing a ledger row (``POST /guarded-hold``), still in one
  round trip; a token sent again afterwards must be refused, else the run fails;
* stepped hold: the guarded hold in the five round trips of the server's own hold, the rules
  decided in Python between them (``POST /stepped-hold``), on 16 groups of its own; its replayed
  token must be refused too;
* hot row: one-place holds all on one group of 1,000,000 (every hold waits for the one row lock);
* contended: 300 holds for a group of 100: exactly 100 granted, and the database then holds exactly
  100 places for that group (read after the phase), else the run fails; stepped contended: the
  same with stepped holds, on a group of their own.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench import deploy, load
from bench.deploy import CONFIGURATIONS, Configuration, Server
from bench.floor_server import CALLER_APP, CALLER_KEY_VARIABLE, DATABASE_VARIABLE, GUARDED_METHOD, SCHEMA
from bench.load import Phase
from bench.results import Options, Row, RunResult, Workload, find, ratio
from bench.stage import Stage
from bench.xrpc import BenchApp

CONCURRENCY = 16
GROUPS = 16
LARGE_CAPACITY = 1_000_000
CONTENDED_CAPACITY = 100
CONTENDED_REQUESTS = 300
# The hold's groups, the guarded hold's and the stepped hold's own: each counts the places of as
# many holds before it.
SPREAD = tuple(f"g{n}" for n in range(GROUPS))
GUARDED_SPREAD = tuple(f"s{n}" for n in range(GROUPS))
STEPPED_SPREAD = tuple(f"t{n}" for n in range(GROUPS))
EMPTY, HOLD, GUARDED, STEPPED = "empty", "hold", "guarded hold", "stepped hold"
HOT_ROW, CONTENDED, STEPPED_CONTENDED = "hot row", "contended", "stepped contended"
# The path of each scenario whose holds carry a token.
TOKENED = {GUARDED: "/guarded-hold", STEPPED: "/stepped-hold"}


@dataclass(frozen=True)
class Sizes:
    warm_up: int
    empty: int
    hold: int
    hot_row: int


FULL = Sizes(warm_up=2000, empty=20_000, hold=6000, hot_row=3000)
QUICK = Sizes(warm_up=500, empty=5000, hold=1500, hot_row=1000)


def configuration(workers: int) -> Configuration:
    """The floor with ``workers`` processes, the counterpart of the configurations with as many."""
    return Configuration(f"floor {workers}p", "postgresql", workers)


def counterpart(row: Row, scenarios: Mapping[str, str]) -> tuple[str, str] | None:
    """The floor row (configuration, scenario) a workload's row is read against: the floor with as
    many processes, in the scenario the workload names for it."""
    served = next((c for c in CONFIGURATIONS if c.name == row.configuration), None)
    if served is None or row.scenario not in scenarios:
        return None
    return configuration(served.workers).name, scenarios[row.scenario]


@asynccontextmanager
async def floor_deployed(floor: Configuration, caller: BenchApp) -> AsyncIterator[Server]:
    """A fresh PostgreSQL database with the floor's schema, its groups and ``caller`` registered as
    its app, and the floor server on it."""
    folder = Path(tempfile.mkdtemp(prefix="tickets-bench-floor-"))
    url = await deploy.create_database()
    try:
        conn = await asyncpg.connect(deploy.dsn(url))
        try:
            await conn.execute(SCHEMA)
            await conn.executemany(
                "INSERT INTO floor_groups (id, capacity) VALUES ($1, $2)",
                [(group, LARGE_CAPACITY) for group in (*SPREAD, *GUARDED_SPREAD, *STEPPED_SPREAD)]
                + [("warm", LARGE_CAPACITY), ("hot", LARGE_CAPACITY)]
                + [("small", CONTENDED_CAPACITY), ("small-stepped", CONTENDED_CAPACITY)],
            )
            await conn.execute("INSERT INTO floor_apps VALUES ($1, $2, true)", CALLER_APP, caller.did)
        finally:
            await conn.close()
        env = {
            **os.environ,
            DATABASE_VARIABLE: deploy.dsn(url),
            CALLER_KEY_VARIABLE: caller.key.public_multikey,
        }
        command = [sys.executable, "-m", "bench.floor_server"]
        async with deploy.running(floor, command, env, folder, url, "/empty") as server:
            yield server
    finally:
        await deploy.drop_database(make_url(url).database or "")
        shutil.rmtree(folder, ignore_errors=True)


def holds(base_url: str, groups: Sequence[str], count: int) -> list[httpx.Request]:
    return [
        httpx.Request(
            "POST",
            f"{base_url}/hold",
            content=json.dumps({"groupId": groups[n % len(groups)], "quantity": 1}).encode(),
            headers={"content-type": "application/json"},
        )
        for n in range(count)
    ]


def tokened_holds(
    scenario: str, base_url: str, caller: BenchApp, groups: Sequence[str], count: int
) -> list[httpx.Request]:
    """Holds as :func:`holds`, to the path of ``scenario`` (one of :data:`TOKENED`), each with a token
    of its own, signed by ``caller``."""
    requests = holds(base_url, groups, count)
    for request in requests:
        request.url = request.url.copy_with(path=TOKENED[scenario])
        request.headers["authorization"] = f"Bearer {caller.token(GUARDED_METHOD)}"
    return requests


async def held(server: Server, group: str) -> int:
    """The places the database holds for ``group``."""
    conn = await asyncpg.connect(deploy.dsn(server.database_url))
    try:
        places: int = await conn.fetchval(
            "SELECT coalesce(sum(quantity), 0) FROM floor_holds WHERE group_id = $1", group
        )
        return places
    finally:
        await conn.close()


async def measure(stage: Stage, sizes: Sizes) -> None:
    """The floor's phases on one running floor server."""
    url, name, out = stage.server.url, stage.name, stage.out
    # Made for each attempt (a phase measured again sends fresh tokens): the last one sent, by scenario.
    sent: dict[str, list[httpx.Request]] = {}
    for scenario, make, count in (
        (EMPTY, lambda n: [httpx.Request("GET", f"{url}/empty") for _ in range(n)], sizes.empty),
        (HOLD, lambda n: holds(url, SPREAD, n), sizes.hold),
        (GUARDED, lambda n: tokened_holds(GUARDED, url, stage.app, GUARDED_SPREAD, n), sizes.hold),
        (STEPPED, lambda n: tokened_holds(STEPPED, url, stage.app, STEPPED_SPREAD, n), sizes.hold),
        (HOT_ROW, lambda n: holds(url, ["hot"], n), sizes.hot_row),
    ):

        def attempt(
            scenario: str = scenario, make: Callable[[int], list[httpx.Request]] = make, count: int = count
        ) -> Awaitable[Phase]:
            sent[scenario] = make(count)
            return stage.measure(scenario, sent[scenario])

        phase = await stage.steady(scenario, attempt)
        out.rows.append(Row.of(name, scenario, phase, phase.count("200")))
        if phase.count("200") != count:
            out.failures.append(f"{name} {scenario}: {dict(phase.outcomes)}")
    for scenario in TOKENED:
        await check_replay_refused(stage, scenario, sent[scenario][0])
    contended = (
        (CONTENDED, "small", holds(url, ["small"], CONTENDED_REQUESTS)),
        (
            STEPPED_CONTENDED,
            "small-stepped",
            tokened_holds(STEPPED, url, stage.app, ["small-stepped"], CONTENDED_REQUESTS),
        ),
    )
    for scenario, group, requests in contended:
        phase = await stage.measure(scenario, requests)
        out.rows.append(Row.of(name, scenario, phase, phase.count("200")))
        granted, places = phase.count("200"), await held(stage.server, group)
        refused = phase.count("409 SoldOut")
        summary = f"{granted} granted, {refused} refused, {places} places held in the database"
        if (granted, places, granted + refused) != (
            CONTENDED_CAPACITY,
            CONTENDED_CAPACITY,
            CONTENDED_REQUESTS,
        ):
            out.failures.append(
                f"{name} {scenario}: {summary} for {CONTENDED_CAPACITY}: {dict(phase.outcomes)}"
            )
        else:
            out.notes.append(f"{name} {scenario}: {summary}")


async def check_replay_refused(stage: Stage, scenario: str, sent: httpx.Request) -> None:
    """A ``scenario`` hold's token, sent again, is refused: the floor spends tokens as the server does."""
    again = await stage.client.post(TOKENED[scenario], content=sent.content, headers=dict(sent.headers))
    if again.status_code != 401 or again.json().get("error") != "TokenReplayed":
        stage.out.failures.append(
            f"{stage.name} {scenario}: a token sent again got {again.status_code} {again.text}"
        )


async def run(options: Options) -> RunResult:
    out = RunResult()
    sizes = QUICK if options.quick else FULL
    chosen = [c for c in CONFIGURATIONS if not options.configurations or c.name in options.configurations]
    for workers in sorted({c.workers for c in chosen}):
        caller = BenchApp()  # signs the guarded holds' tokens
        async with (
            floor_deployed(configuration(workers), caller) as server,
            load.pool(server.url, CONCURRENCY) as client,
        ):
            stage = Stage(caller, server, client, options, out, CONCURRENCY)
            await load.warm_up(client, holds(server.url, ["warm"], sizes.warm_up), CONCURRENCY)
            await measure(stage, sizes)
    return out


def against(rows: Sequence[Row], scenarios: Mapping[str, str], floor_rows: Sequence[Row]) -> list[str]:
    """Each row of ``scenarios`` as a ratio to its floor row: the rate, p99 and the CPU of server
    and database per request; a row read against the floor's hold is read against its guarded
    hold and its stepped hold too (what the server's guarantees cost at least, and those with the
    server's round trips), without the 2x goal."""
    lines = []
    for row in rows:
        pair = counterpart(row, scenarios)
        reference = find(floor_rows, *pair) if pair else None
        if pair is None or reference is None:
            continue
        lines.append(_against(row, reference, " (goal >= 0.50x)"))
        for other in TOKENED if pair[1] == HOLD else ():
            if (tokened := find(floor_rows, pair[0], other)) is not None:
                lines.append(_against(row, tokened, ""))
    return lines


def _cpu(row: Row) -> float:
    """The server's and the database's CPU a request, in ms."""
    return row.server_cpu_ms + (row.database_cpu_ms or 0.0)


def _against(row: Row, reference: Row, goal: str) -> str:
    cpu, floor_cpu = _cpu(row), _cpu(reference)
    return (
        f"{row.configuration} {row.scenario}: {row.rate:,.0f}/s = {ratio(row.rate, reference.rate)} "
        f"the {reference.configuration} {reference.scenario} {reference.rate:,.0f}/s{goal}; "
        f"p99 {ratio(row.p99_ms, reference.p99_ms)}; server + db CPU {cpu:.2f} ms = "
        f"{ratio(cpu, floor_cpu)} its {floor_cpu:.2f} ms"
    )


def ratios(rows: Sequence[Row]) -> list[str]:
    """A hold's minimum against an empty request, and 2 processes against 1."""
    lines = []
    for workers in (1, 2):
        name = configuration(workers).name
        empty, hold, hot = (find(rows, name, s) for s in (EMPTY, HOLD, HOT_ROW))
        if empty and hold and hot:
            lines.append(
                f"{name}: hold / empty req/s {ratio(hold.rate, empty.rate)}, "
                f"hot row / hold {ratio(hot.rate, hold.rate)}"
            )
        for scenario in TOKENED:
            if hold and (tokened := find(rows, name, scenario)):
                lines.append(
                    f"{name}: {scenario} / hold req/s {ratio(tokened.rate, hold.rate)}, "
                    f"server + db CPU {ratio(_cpu(tokened), _cpu(hold))}"
                )
    one, two = (find(rows, configuration(w).name, HOLD) for w in (1, 2))
    if one and two:
        lines.append(f"hold: floor 2p / 1p req/s {ratio(two.rate, one.rate)}")
    return lines


WORKLOAD = Workload(
    name="floor",
    summary="the machine's floor: Litestar + asyncpg, a hold in one round trip, and an empty request",
    run=run,
    ratios=ratios,
)
