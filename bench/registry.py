"""The one place workloads are registered: add a module with a ``WORKLOAD`` and list it here."""

from __future__ import annotations

from bench import checkin, desk_sync, exports, floor, holds, issuance, levers, scanner
from bench.results import Workload

WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        floor.WORKLOAD,
        holds.WORKLOAD,
        exports.WORKLOAD,
        scanner.WORKLOAD,
        issuance.WORKLOAD,
        checkin.WORKLOAD,
        desk_sync.WORKLOAD,
        levers.WORKLOAD,
    )
}
