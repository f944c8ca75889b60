"""What a workload reports: table rows, checks that failed, and the medians over repeated runs."""

from __future__ import annotations

import statistics
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from bench.deploy import CONFIGURATIONS, Configuration
from bench.load import Phase


@dataclass(frozen=True)
class Options:
    """``settle_s``: how long to wait for other work on the machine to stop before each timed phase;
    ``configurations``: the names to measure (all when empty)."""

    quick: bool = False
    profile_dir: Path | None = None
    settle_s: float = 0.0
    configurations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    """One measured scenario on one configuration."""

    configuration: str
    scenario: str
    requests: int
    ok: int
    rate: float
    p50_ms: float
    p99_ms: float
    peak_rss_mb: float | None
    server_cpu_ms: float
    database_cpu_ms: float | None
    client_cpu_ms: float
    other_cores: float

    @classmethod
    def of(cls, configuration: str, scenario: str, phase: Phase, ok: int) -> Row:
        return cls(
            configuration=configuration,
            scenario=scenario,
            requests=phase.requests,
            ok=ok,
            rate=phase.rate,
            p50_ms=phase.p50_ms,
            p99_ms=phase.p99_ms,
            peak_rss_mb=phase.peak_rss_mb,
            server_cpu_ms=phase.server_cpu_ms,
            database_cpu_ms=phase.database_cpu_ms,
            client_cpu_ms=phase.client_cpu_ms,
            other_cores=phase.other_cores,
        )


@dataclass
class RunResult:
    """One run of a workload. ``failures`` are correctness failures (the exit status); ``notes`` are
    observations worth printing (refusal counts, CPU split between processes)."""

    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Workload:
    """A registered benchmark: ``run`` measures once, ``ratios`` reads the (median) rows;
    ``against_floor``: its scenarios read against the floor, each with the floor scenario it is read
    against (a run of such a workload measures the floor first)."""

    name: str
    summary: str
    run: Callable[[Options], Awaitable[RunResult]]
    ratios: Callable[[Sequence[Row]], list[str]]
    against_floor: Mapping[str, str] = field(default_factory=dict)


def median_rows(runs: Sequence[Sequence[Row]]) -> list[Row]:
    """Field-by-field medians of the rows of repeated runs, in the order of the first run."""
    merged = []
    for first in runs[0]:
        key = (first.configuration, first.scenario)
        same = [r for run in runs for r in run if (r.configuration, r.scenario) == key]
        values = {}
        for f in fields(Row):
            column = [getattr(r, f.name) for r in same]
            if isinstance(column[0], str) or any(v is None for v in column):
                continue
            middle = statistics.median(column)
            values[f.name] = round(middle) if isinstance(column[0], int) else middle
        merged.append(replace(first, **values))
    return merged


def ratio(value: float, reference: float) -> str:
    """``value`` as a multiple of ``reference``, as the ratio lines print it: ``0.54x``."""
    return f"{value / reference:.2f}x"


def find(rows: Sequence[Row], configuration: str, scenario: str) -> Row | None:
    return next((r for r in rows if (r.configuration, r.scenario) == (configuration, scenario)), None)


def measured(rows: Sequence[Row], scenario: str) -> list[tuple[Configuration, Row]]:
    """The configurations that measured ``scenario``, each with its row."""
    return [(c, row) for c in CONFIGURATIONS if (row := find(rows, c.name, scenario))]


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


COLUMNS = (
    "configuration",
    "scenario",
    "requests",
    "ok",
    "req/s",
    "p50 ms",
    "p99 ms",
    "peak RSS MB",
    "CPU ms/req server",
    "db",
    "client",
    "other cores",
)


def table(rows: Sequence[Row]) -> str:
    """The rows as an aligned text table."""
    body = [
        (
            r.configuration,
            r.scenario,
            f"{r.requests:,}",
            f"{r.ok:,}",
            _number(r.rate, 0),
            _number(r.p50_ms),
            _number(r.p99_ms),
            _number(r.peak_rss_mb, 0),
            _number(r.server_cpu_ms, 2),
            _number(r.database_cpu_ms, 2),
            _number(r.client_cpu_ms, 2),
            _number(r.other_cores, 2),
        )
        for r in rows
    ]
    widths = [max(len(c), *(len(line[i]) for line in body)) for i, c in enumerate(COLUMNS)]
    lines = [COLUMNS, tuple("-" * w for w in widths), *body]

    def aligned(line: Sequence[str]) -> str:
        cells = zip(line, widths, strict=True)
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(cells))

    return "\n".join(aligned(line) for line in lines)
