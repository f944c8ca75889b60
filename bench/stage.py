"""What every workload does on a running server: time a phase (after the machine settles, profiled
when asked), note where the CPU went, and measure again when other work shared the cores."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from bench import load, profiling
from bench.deploy import CONFIGURATIONS, BenchSetupError, Configuration, Server
from bench.results import Options, RunResult
from bench.xrpc import BenchApp, XrpcError

# Other processes using more than this many cores during a phase make it noisy: it is run again.
NOISE_CORES = 0.25
MAX_ATTEMPTS = 3


@dataclass
class Stage:
    """One configuration being measured: its server, the client pool and the run's results."""

    app: BenchApp
    server: Server
    client: httpx.AsyncClient
    options: Options
    out: RunResult
    concurrency: int

    @property
    def name(self) -> str:
        return self.server.configuration.name

    async def measure(
        self, scenario: str, requests: list[httpx.Request], *, follow: load.Follow | None = None
    ) -> load.Phase:
        """One timed phase; its notes go into the run's. wrk sends the requests, unless their answers
        lead to further calls (``follow``): then this process does (:func:`load.by_connection`)."""
        drive = (
            load.by_wrk(self.server.url, requests, self.concurrency)
            if follow is None
            else load.by_connection(self.server.url, requests, self.concurrency, follow)
        )
        label = f"{self.name} {scenario}"
        if (
            self.options.settle_s
            and (busy := await load.settle(self.options.settle_s, NOISE_CORES)) >= NOISE_CORES
        ):
            self.out.notes.append(f"{label}: the machine was still busy ({busy:.2f} cores) when timing began")
        pids = self.server.serving_pids()
        async with profiling.recording(pids, self.options.profile_dir, label) as profiles:
            phase = await load.timed(self.server, len(requests), drive)
        self.out.notes.append(f"{label}: outcomes {dict(phase.outcomes)}; {phase.cpu_budget()}")
        if len(phase.worker_cpu_share) > 1:
            split = " / ".join(f"{100 * s:.0f} %" for s in phase.worker_cpu_share)
            self.out.notes.append(f"{label}: server CPU split between processes {split}")
        if profiles:
            self.out.notes.append(f"{label}: profile of the server ({', '.join(map(str, profiles))})")
            self.out.notes += ["    " + line for line in profiling.summary(profiles)]
        return phase

    async def steady(self, scenario: str, attempt: Callable[[], Awaitable[load.Phase]]) -> load.Phase:
        """``attempt()`` (which measures one phase), again while other work took the cores."""
        for n in range(1, MAX_ATTEMPTS + 1):
            phase = await attempt()
            if phase.other_cores <= NOISE_CORES:
                break
            then = "measuring again" if n < MAX_ATTEMPTS else "kept"
            self.out.notes.append(
                f"{self.name} {scenario}: other work took {phase.other_cores:.2f} cores; {then}"
            )
        return phase


async def each_configuration(
    options: Options, out: RunResult, measure: Callable[[Configuration], Awaitable[None]]
) -> None:
    """``measure`` every configuration chosen; one whose server fails is a failure of the run, not
    its end."""
    for configuration in CONFIGURATIONS:
        if options.configurations and configuration.name not in options.configurations:
            continue
        try:
            await measure(configuration)
        except (BenchSetupError, XrpcError, httpx.HTTPError) as exc:
            out.failures.append(f"{configuration.name}: {type(exc).__name__}: {exc}")
