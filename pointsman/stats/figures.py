"""``StatsLatency``: the ``LatencySource`` the objective reads, backed by the stats store.

Per endpoint, the figure is a robust statistic (P90 by default, or the median) of the newest usable samples
within a rolling window, benchmark runs and routed traffic pooled: each streamed request is one measurement,
wherever it came from. With a region set, that region's samples are used when there are enough of them, else
every region's. Failed samples (errors, timeouts, streams without tokens) never enter a figure. An endpoint
with too few usable samples in the window falls back to its catalogue prior, with a note saying why (never
measured, or measured too long ago), and the objective flags it as a prior in the router's explanation.

Reading is cheap: figures are computed for every endpoint at once, cached, and recomputed at most every
``refresh_s`` seconds (three small queries); concurrent readers meanwhile use the cached ones. In the gateway
a background task reloads them (``refresh_forever``), so no request ever waits for the database; elsewhere
the read that finds the cache expired reloads it. A database that cannot be read keeps the last figures (or
the priors) and logs a warning rather than failing requests.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from sqlalchemy.exc import SQLAlchemyError

from pointsman.db import utcnow
from pointsman.latency import LatencyFigure

if TYPE_CHECKING:
    from pointsman.catalog import Endpoint
    from pointsman.stats.store import StatsStore

__all__ = ["MeasuredFigure", "StatsLatency", "quantile", "robust"]

log = logging.getLogger("pointsman.stats")

Statistic = Literal["p90", "median"]


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` with linear interpolation between order statistics (numpy's default)."""
    assert values, "quantile of no values"
    assert 0.0 <= q <= 1.0, f"q must be in [0, 1], got {q}"
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def robust(values: Sequence[float], statistic: Statistic) -> float:
    return quantile(values, 0.9 if statistic == "p90" else 0.5)


@dataclass(frozen=True)
class MeasuredFigure:
    """One endpoint's figure and what it rests on (shown by ``pointsman bench show``)."""

    endpoint: str
    figure: LatencyFigure
    samples: int  # usable samples behind the figure (0 for a prior)
    failures: int  # failed samples in the window
    newest: datetime | None  # the newest usable sample of any age


@dataclass(frozen=True)
class _Measured:
    ttft_ms: float
    itl_ms: float | None  # None: no sample had two content chunks
    samples: int
    sources: str
    note: str


@dataclass(frozen=True)
class _Snapshot:
    measured: dict[str, _Measured]
    failures: dict[str, int]
    newest: dict[str, datetime]
    loaded_at: float  # time.monotonic()


class StatsLatency:
    """A cached ``LatencySource`` over a ``StatsStore`` (see the module docstring)."""

    def __init__(
        self,
        store: StatsStore,
        *,
        region: str | None = None,
        statistic: Statistic = "p90",
        window_s: float = 6 * 3600,
        min_samples: int = 1,
        max_samples: int = 500,
        refresh_s: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        assert statistic in ("p90", "median"), f"statistic must be 'p90' or 'median', got {statistic!r}"
        assert window_s > 0 and refresh_s >= 0 and 1 <= min_samples <= max_samples, "bad StatsLatency options"
        self.store = store
        self.region = region
        self.statistic: Statistic = statistic
        self.window = timedelta(seconds=window_s)
        self.min_samples = min_samples
        self.max_samples = max_samples
        self.refresh_s = refresh_s
        self.clock = clock
        self._refresh_lock = threading.Lock()
        self._snapshot: _Snapshot | None = None
        self._background = False  # True while refresh_forever runs: reads never query
        self.refreshes = 0  # how many times the store was read (tests check the cache with it)

    # ---- the LatencySource protocol ------------------------------------------------------------------------

    def figures(self, endpoints: Sequence[Endpoint]) -> dict[str, LatencyFigure]:
        """A figure for every endpoint: measured where the window has enough usable samples, else its
        catalogue prior with a note saying why."""
        self._maybe_refresh()
        return {e.name: self.describe(e).figure for e in endpoints}

    # ---- details --------------------------------------------------------------------------------------------

    def describe(self, endpoint: Endpoint) -> MeasuredFigure:
        """The figure for ``endpoint`` and what it rests on (from the cache, loading it once if empty)."""
        snap = self._snapshot
        if snap is None:
            self._maybe_refresh()
            snap = self._snapshot
        measured = snap.measured.get(endpoint.name) if snap else None
        failures = snap.failures.get(endpoint.name, 0) if snap else 0
        newest = snap.newest.get(endpoint.name) if snap else None
        if measured is not None:
            note = measured.note
            itl = measured.itl_ms
            if itl is None:
                itl = endpoint.itl_prior_ms
                note += "; no inter-token gap measured (one-chunk answers): ITL is the catalogue prior"
            figure = LatencyFigure(ttft_ms=measured.ttft_ms, itl_ms=itl, source=measured.sources, note=note)
            return MeasuredFigure(endpoint.name, figure, measured.samples, failures, newest)
        hours = self.window.total_seconds() / 3600
        if newest is not None:
            age_h = (self.clock() - newest).total_seconds() / 3600
            why = f"newest measurement is {age_h:.1f} h old, outside the {hours:g} h window"
        else:
            why = "never measured (run `pointsman bench run`)"
        if failures:
            why += f"; {failures} failed request(s) in the window"
        figure = LatencyFigure(
            ttft_ms=endpoint.ttft_prior_ms,
            itl_ms=endpoint.itl_prior_ms,
            source="prior",
            stale=newest is not None,
            note=f"catalogue prior: {why}",
        )
        return MeasuredFigure(endpoint.name, figure, 0, failures, newest)

    def refresh(self) -> None:
        """Reload every endpoint's figure from the store now (three queries)."""
        now = self.clock()
        since = now - self.window
        rows = self.store.recent_ok(since=since, per_group=self.max_samples)
        failures = self.store.failures(since=since)
        newest = self.store.newest_ok()
        by_endpoint: dict[str, list[tuple[str, str, float, float | None]]] = defaultdict(list)
        for endpoint, region, source, ttft, itl in rows:
            by_endpoint[endpoint].append((region, source, ttft, itl))
        measured: dict[str, _Measured] = {}
        for endpoint, samples in by_endpoint.items():
            found = self._compute(samples)
            if found is not None:
                measured[endpoint] = found
        self._snapshot = _Snapshot(measured, failures, newest, time.monotonic())
        self.refreshes += 1

    def invalidate(self) -> None:
        """Make the next read reload from the store."""
        snap = self._snapshot
        if snap is not None:
            self._snapshot = _Snapshot(snap.measured, snap.failures, snap.newest, -math.inf)

    def _fresh(self, snap: _Snapshot | None) -> bool:
        return snap is not None and time.monotonic() - snap.loaded_at < self.refresh_s

    async def refresh_forever(self) -> None:
        """Reload every ``refresh_s`` seconds in a worker thread, until cancelled; meanwhile reads only use the
        cache. For ``refresh_s == 0`` (every read reloads) there is nothing to do in the background."""
        import asyncio

        if self.refresh_s <= 0:
            return
        self._background = True
        try:
            while True:
                await asyncio.to_thread(self.reload)
                await asyncio.sleep(self.refresh_s)
        finally:
            self._background = False

    def reload(self) -> None:
        """``refresh``, but a database error keeps the last figures (or the priors) and logs a warning."""
        try:
            self.refresh()
        except SQLAlchemyError as exc:
            log.warning("cannot read latency figures from the stats store; keeping the last ones: %s", exc)
            old = self._snapshot or _Snapshot({}, {}, {}, 0.0)
            self._snapshot = _Snapshot(old.measured, old.failures, old.newest, time.monotonic())

    def _maybe_refresh(self) -> None:
        snap = self._snapshot
        if self._fresh(snap) or (self._background and snap is not None):
            return
        # The first load waits for the lock; later ones are skipped while another thread refreshes.
        if not self._refresh_lock.acquire(blocking=snap is None):
            return
        try:
            if self._fresh(self._snapshot):
                return  # another thread refreshed while this one waited
            try:
                self.refresh()
            except SQLAlchemyError as exc:
                log.warning(
                    "cannot read latency figures from the stats store; keeping the last ones: %s", exc
                )
                old = self._snapshot or _Snapshot({}, {}, {}, 0.0)
                self._snapshot = _Snapshot(old.measured, old.failures, old.newest, time.monotonic())
        finally:
            self._refresh_lock.release()

    def _compute(self, samples: list[tuple[str, str, float, float | None]]) -> _Measured | None:
        where = ""
        if self.region is not None:
            local = [s for s in samples if s[0] == self.region]
            if len(local) >= self.min_samples:
                samples = local
            elif samples:
                where = f", from region(s) {', '.join(sorted({s[0] for s in samples}))}"
        if len(samples) < self.min_samples:
            return None
        ttft = robust([s[2] for s in samples], self.statistic)
        itls = [s[3] for s in samples if s[3] is not None]
        hours = self.window.total_seconds() / 3600
        return _Measured(
            ttft_ms=ttft,
            itl_ms=robust(itls, self.statistic) if itls else None,
            samples=len(samples),
            sources="+".join(sorted({s[1] for s in samples})),
            note=f"{self.statistic} of {len(samples)} sample(s) in the last {hours:g} h{where}",
        )
