"""The gateway's stats hook: one object built in the lifespan from ``[stats]`` settings, holding the store,
the cached figures the router reads, the traffic telemetry the chat route feeds, and the benchmark scheduler.

    stats = StatsService.open(settings, stats_settings, catalog)   # in the lifespan, before the ranker
    await stats.start(providers)                                    # background flush and schedule
    ...
    await stats.aclose()                                            # on shutdown: flush, stop
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pointsman.stats.figures import StatsLatency
from pointsman.stats.scheduler import BenchScheduler
from pointsman.stats.settings import StatsSettings
from pointsman.stats.store import StatsStore
from pointsman.stats.telemetry import TrafficTelemetry

if TYPE_CHECKING:
    from pointsman.catalog import Catalog
    from pointsman.providers.base import Provider
    from pointsman.settings import Settings
    from pointsman.stats.bench import BenchConfig

__all__ = ["StatsService", "bench_config", "open_stats"]


def bench_config(settings: StatsSettings) -> BenchConfig:
    """The benchmark run that ``[stats]`` describes."""
    from pointsman.stats.bench import BenchConfig

    return BenchConfig(
        endpoints=settings.bench_endpoints,
        region=settings.region,
        repeats=settings.bench_repeats,
        concurrency=settings.bench_concurrency,
        max_tokens=settings.bench_max_tokens,
        budget_usd=settings.bench_budget_usd,
    )


@dataclass
class StatsService:
    settings: StatsSettings
    catalog: Catalog
    store: StatsStore
    latency: StatsLatency | None
    telemetry: TrafficTelemetry | None
    scheduler: BenchScheduler | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def open(cls, settings: Settings, stats: StatsSettings, catalog: Catalog) -> StatsService:
        """The store (migrated), figures and telemetry that ``stats`` asks for. Blocking (database)."""
        store = StatsStore.open(settings)
        latency = None
        if stats.figures:
            latency = StatsLatency(
                store,
                region=stats.region,
                statistic=stats.statistic,
                window_s=stats.window_s,
                min_samples=stats.min_samples,
                max_samples=stats.max_samples,
                refresh_s=stats.refresh_s,
            )
            latency.reload()  # loaded before the first request, which then never waits for the database
        telemetry = None
        if stats.telemetry:
            telemetry = TrafficTelemetry(
                store, region=stats.region, flush_s=stats.telemetry_flush_s, buffer=stats.telemetry_buffer
            )
        return cls(stats, catalog, store, latency, telemetry)

    async def start(self, providers: dict[str, Provider]) -> None:
        """Start the telemetry flush loop and, when ``schedule`` is on, the benchmark scheduler (which uses the
        gateway's own provider adapters and connection pool)."""
        if self.telemetry is not None:
            self.telemetry.start()
        if self.latency is not None:
            self._tasks.append(asyncio.create_task(self.latency.refresh_forever(), name="pointsman-figures"))
        if self.settings.schedule:
            from pointsman.stats.bench import plan_benchmark, run_scheduled

            config = bench_config(self.settings)
            interval_s = self.settings.bench_interval_s

            async def run_once() -> None:
                plan = plan_benchmark(self.catalog, config)
                result = await run_scheduled(plan, self.store, providers, interval_s=interval_s)
                if (
                    result is not None and self.latency is not None
                ):  # route on the new figures now, not at the next reload
                    await asyncio.to_thread(self.latency.refresh)

            self.scheduler = BenchScheduler(
                run_once, self.store, region=self.settings.region, interval_s=self.settings.bench_interval_s
            )
            self.scheduler.start()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.scheduler is not None:
            await self.scheduler.aclose()
        if self.telemetry is not None:
            await self.telemetry.aclose()
        self.store.close()


async def open_stats(settings: Settings, stats: StatsSettings, catalog: Catalog) -> StatsService:
    """``StatsService.open`` off the event loop (it opens and migrates the database)."""
    return await asyncio.to_thread(StatsService.open, settings, stats, catalog)
