"""``python -m bench [--quick] [--only NAME] [--configuration NAME] [--repeat N] [--settle S]
[--profile DIR] [--json FILE]``: run the registered workloads and print their tables and ratios."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench import deploy, floor, load
from bench.registry import WORKLOADS
from bench.results import Options, Row, RunResult, Workload, median_rows, table


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Throughput, latency and memory of a real server"
    )
    parser.add_argument("--quick", action="store_true", help="short runs, for smoke checks")
    parser.add_argument(
        "--only", action="append", choices=sorted(WORKLOADS), help="run only this workload (repeatable)"
    )
    parser.add_argument(
        "--configuration",
        action="append",
        choices=[c.name for c in deploy.CONFIGURATIONS],
        help="measure only this deployment (repeatable), e.g. 'PostgreSQL 2p'",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run each workload N times; the table shows medians"
    )
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of the server into this folder")
    parser.add_argument(
        "--settle",
        type=float,
        default=None,
        help="seconds to wait for an idle machine before each timed phase (default 30; --quick 0)",
    )
    parser.add_argument("--json", type=Path, help="also write every row of every run to this file")
    return parser


def revision() -> str:
    """The commit measured, ``-dirty`` when the working tree has changes."""
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            check=False,
            cwd=deploy.ROOT,
            capture_output=True,
            text=True,
        )
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def header() -> str:
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.node()}  "
        f"{load.cores()} cores  Python {platform.python_version()}  server at {revision()}\n"
        f"Machine load (uptime): {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}. "
        "wrk sends each timed phase's requests, built before the phase (tokens signed, bodies encoded), "
        "16 or 8 in flight, on the same cores as the server and the database; paid issuance, whose "
        "holds lead to webhook calls, by raw keep-alive connections from this process."
    )


def report(workload: Workload, runs: Sequence[RunResult], floor_rows: Sequence[Row]) -> str:
    rows = median_rows([r.rows for r in runs])
    lines = [f"== {workload.name}: {workload.summary}"]
    if len(runs) > 1:
        lines.append(f"   medians of {len(runs)} runs")
    lines += [table(rows), "", "ratios:"]
    lines += ["  " + line for line in workload.ratios(rows)]
    if workload.against_floor:
        lines += ["", "against the floor measured in this run:"]
        lines += ["  " + line for line in floor.against(rows, workload.against_floor, floor_rows)]
    lines += ["", "notes:"] + ["  " + n for r in runs for n in r.notes]
    failures = [f for r in runs for f in r.failures]
    lines += ["", "FAILED:", *("  " + f for f in failures)] if failures else ["", "checks: all passed"]
    return "\n".join(lines)


async def run_all(names: Sequence[str], options: Options, repeat: int) -> dict[str, list[RunResult]]:
    """Every chosen workload ``repeat`` times. Ctrl-C or SIGTERM (even where a background shell
    ignores SIGINT) stops it; the cleanup still runs."""
    task = asyncio.current_task()
    if task is not None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
    results: dict[str, list[RunResult]] = {}
    for name in names:
        for n in range(repeat):
            if repeat > 1:
                print(f"{name}: run {n + 1} of {repeat}", file=sys.stderr, flush=True)
            run = await WORKLOADS[name].run(options)
            results.setdefault(name, []).append(run)
            if repeat > 1:
                print(table(run.rows), file=sys.stderr, flush=True)
    return results


def write_json(path: Path, results: dict[str, list[RunResult]]) -> None:
    data = {
        name: {
            "runs": [[asdict(row) for row in run.rows] for run in runs],
            "medians": [asdict(row) for row in median_rows([run.rows for run in runs])],
            "failures": [f for run in runs for f in run.failures],
        }
        for name, runs in results.items()
    }
    path.write_text(json.dumps(data, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = args.only or list(WORKLOADS)
    if floor.WORKLOAD.name not in names and any(WORKLOADS[n].against_floor for n in names):
        names = [floor.WORKLOAD.name, *names]  # measured first, in the same run
    settle = args.settle if args.settle is not None else (0.0 if args.quick else 30.0)
    options = Options(
        quick=args.quick,
        profile_dir=args.profile,
        settle_s=settle,
        configurations=tuple(args.configuration or ()),
    )
    print(header(), flush=True)
    try:
        results = asyncio.run(run_all(names, options, max(1, args.repeat)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: servers stopped, databases dropped", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            deploy.cleanup_leftovers()
    floor_runs = results.get(floor.WORKLOAD.name)
    floor_rows = median_rows([r.rows for r in floor_runs]) if floor_runs else []
    for name, runs in results.items():
        print()
        print(report(WORKLOADS[name], runs, floor_rows))
    if args.json:
        write_json(args.json, results)
    return 1 if any(r.failures for runs in results.values() for r in runs) else 0
