"""Re-run benchmarks every N hours (3 by default), inside ``pointsman serve`` or standalone
(``pointsman bench schedule``).

The store decides when the next run is due: the newest run of this region (from any process) plus the
interval. So several gateway replicas of one region share one schedule instead of each benchmarking, and a
restart does not re-run a benchmark that ran an hour ago. A run that fails (a budget refusal, a database
error) is logged and retried at the next interval; the loop itself only ends when cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pointsman.db import utcnow
from pointsman.errors import PointsmanError
from pointsman.stats.store import StatsStore

__all__ = ["BenchScheduler"]

log = logging.getLogger("pointsman.stats.scheduler")


class BenchScheduler:
    """Calls ``run_once`` whenever this region's newest run is at least ``interval_s`` old."""

    def __init__(
        self,
        run_once: Callable[[], Awaitable[Any]],
        store: StatsStore,
        *,
        region: str,
        interval_s: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        assert interval_s > 0, "the benchmark interval must be positive"
        self.run_once = run_once
        self.store = store
        self.region = region
        self.interval_s = interval_s
        self.clock = clock
        self.runs = 0  # runs started by this scheduler
        self.failures = 0
        self._last_attempt: datetime | None = None
        self._task: asyncio.Task[None] | None = None

    async def due_in(self) -> float:
        """Seconds until the next run is due (0 or less: now)."""
        last = await asyncio.to_thread(self.store.last_run_started, self.region)
        candidates = [t for t in (last, self._last_attempt) if t is not None]
        if not candidates:
            return 0.0
        return self.interval_s - (self.clock() - max(candidates)).total_seconds()

    async def tick(self) -> bool:
        """Run once if due; returns whether it ran."""
        if await self.due_in() > 0:
            return False
        self._last_attempt = self.clock()
        self.runs += 1
        try:
            await self.run_once()
        except PointsmanError as exc:
            self.failures += 1
            log.warning("scheduled benchmark (region %s) failed: %s", self.region, exc.message)
        except Exception:  # a scheduled loop must survive one bad run; the traceback goes to the log
            self.failures += 1
            log.exception("scheduled benchmark (region %s) failed", self.region)
        return True

    async def run_forever(self, *, max_runs: int | None = None) -> None:
        """Run whenever due, sleeping in between, until cancelled (or after ``max_runs`` runs)."""
        while max_runs is None or self.runs < max_runs:
            await self.tick()
            if max_runs is not None and self.runs >= max_runs:
                return
            await asyncio.sleep(min(max(await self.due_in(), 0.05), self.interval_s))

    def start(self) -> None:
        """Run ``run_forever`` as a background task of the running event loop."""
        assert self._task is None, "the scheduler is already running"
        self._task = asyncio.create_task(self.run_forever(), name=f"pointsman-bench-{self.region}")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
