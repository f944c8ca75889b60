"""``python -m bench [--quick] [--only NAME] [--repeat N] [--profile DIR] [--json FILE]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench import deploy, load
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
        "--repeat", type=int, default=1, help="run each workload N times; the table shows medians"
    )
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of the server into this folder")
    parser.add_argument("--json", type=Path, help="also write every row of every run to this file")
    return parser


def header() -> str:
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  {platform.node()}  "
        f"{load.cores()} cores  Python {platform.python_version()}\n"
        "The load generator runs in this process and shares the cores with the server and the database; "
        "its tokens are signed before each timed phase."
    )


def report(workload: Workload, runs: Sequence[RunResult]) -> str:
    rows = median_rows([r.rows for r in runs])
    title = f"== {workload.name}: {workload.summary}"
    lines = [title, f"   medians of {len(runs)} runs" if len(runs) > 1 else "", table(rows), "", "ratios:"]
    lines += ["  " + line for line in workload.ratios(rows)]
    lines += ["", "notes:"] + ["  " + n for r in runs for n in r.notes]
    failures = [f for r in runs for f in r.failures]
    lines += ["", "FAILED:", *("  " + f for f in failures)] if failures else ["", "checks: all passed"]
    return "\n".join(line for line in lines if line is not None)


async def run_all(names: Sequence[str], options: Options, repeat: int) -> dict[str, list[RunResult]]:
    """Every chosen workload ``repeat`` times; SIGTERM stops it like Ctrl-C (cleanup still runs)."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
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
    options = Options(quick=args.quick, profile_dir=args.profile)
    print(header(), flush=True)
    try:
        results = asyncio.run(run_all(names, options, max(1, args.repeat)))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted: servers stopped, databases dropped", file=sys.stderr)
        return 130
    finally:
        with contextlib.suppress(Exception):
            deploy.cleanup_leftovers()
    for name, runs in results.items():
        print()
        print(report(WORKLOADS[name], runs))
    if args.json:
        write_json(args.json, results)
    return 1 if any(r.failures for runs in results.values() for r in runs) else 0


__all__ = ["Row", "main"]
