"""The service's Prometheus metrics (``docs/operations.md`` lists them).

Every process updates its own values; under ``tickets serve --workers N`` (N > 1) the client
library's multiprocess mode keeps them in files of a private folder named by
``PROMETHEUS_MULTIPROC_DIR`` (set up by :func:`prepare_multiprocess_dir` before the workers start),
and :func:`exposition` sums every process's files. Updating a value costs no database work and no
I/O beyond a memory-mapped write, so the hot paths only pay for a few additions.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "tickets_requests", "HTTP requests answered, by XRPC method (NSID) and status", ["nsid", "status"]
)
REQUEST_SECONDS = Histogram(
    "tickets_request_duration_seconds",
    "Time to answer an HTTP request, by XRPC method (NSID)",
    ["nsid"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HOLDS_CREATED = Counter("tickets_holds_created", "Checkout holds created")
HOLDS_EXPIRED = Counter("tickets_holds_expired", "Checkout holds the sweeper marked expired")
TICKETS_ISSUED = Counter("tickets_issued", "Tickets issued")
CHECKINS = Counter("tickets_checkins", "Online check-in calls, by answered status", ["result"])
# The same database seen from every process: the largest value of the living processes.
OUTBOX_BACKLOG = Gauge(
    "tickets_outbox_backlog", "Lifecycle events waiting to be delivered", multiprocess_mode="livemax"
)
OUTBOX_OLDEST_AGE = Gauge(
    "tickets_outbox_oldest_age_seconds",
    "Age of the oldest lifecycle event waiting to be delivered",
    multiprocess_mode="livemax",
)
SWEEPER_LAST_PASS = Gauge(
    "tickets_sweeper_last_pass_timestamp_seconds",
    "When a sweeper pass last finished (any process)",
    multiprocess_mode="livemax",
)
SWEEPER_LAG = Gauge(
    "tickets_sweeper_lag_seconds",
    "How long the longest-lapsed hold of the last sweeper pass had been past its expiry",
    multiprocess_mode="livemax",
)
DB_POOL_IN_USE = Gauge(
    "tickets_db_pool_connections_in_use", "Database connections checked out", multiprocess_mode="livesum"
)
DB_POOL_SIZE = Gauge(
    "tickets_db_pool_connections", "Database connections the pools hold open", multiprocess_mode="livesum"
)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def prepare_multiprocess_dir() -> Path | None:
    """An empty folder for the workers' metric files, named in ``PROMETHEUS_MULTIPROC_DIR``: the
    operator's folder there, emptied, or else a new private one, which it answers (to be removed
    on the way out). Call before any worker starts."""
    configured = multiprocess_dir()
    if configured is None:
        folder = Path(tempfile.mkdtemp(prefix="tickets-metrics-"))
        os.environ[MULTIPROC_ENV] = str(folder)
        return folder
    for stale in Path(configured).glob("*.db"):
        stale.unlink()
    Path(configured).mkdir(mode=0o700, parents=True, exist_ok=True)
    return None


def exposition() -> bytes:
    """The Prometheus text of this process, or of every process in multiprocess mode."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry)


def process_exited() -> None:
    """Drop this process's ``live*`` gauges (its counters keep counting in the sums)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]
