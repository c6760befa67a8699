"""The Endpoints panel's data: TTFT and ITL over time per endpoint, error rates and prices.

Latency comes from the stats tables (``latency_samples`` and ``bench_runs``, written by ``pointsman bench run``,
the benchmark scheduler and the gateway's passive telemetry); the queries here only read them. Each benchmark
run becomes one point per endpoint (the median of its requests); traffic samples are grouped into time bins.
Upstream attempts since the gateway started come from its Prometheus counters. Prices come from the catalogue.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.exc import OperationalError, ProgrammingError

if TYPE_CHECKING:
    from pointsman.catalog import Catalog
    from pointsman.gateway.metrics import GatewayMetrics

__all__ = [
    "MAX_POINTS",
    "EndpointRow",
    "EndpointsView",
    "Sample",
    "attempts_by_endpoint",
    "build_view",
    "read_samples",
    "stats_tables_ready",
]

# Points per series on a chart: traffic samples are grouped into this many time bins over the shown range,
# and a series never has more than MAX_POINTS points (benchmark runs beyond that are binned too).
TRAFFIC_BINS = 48
MAX_POINTS = 96


class Sample(NamedTuple):
    """One latency sample as the console reads it (a tuple: tens of thousands are built per page)."""

    endpoint: str
    region: str
    at: datetime
    ok: bool
    ttft_ms: float | None
    itl_ms: float | None
    source: str  # "benchmark" or "traffic"
    run_id: str | None = None
    error: str | None = None


@dataclass
class EndpointRow:
    endpoint: str
    input_usd_per_mtok: Decimal | None
    output_usd_per_mtok: Decimal | None
    blended_usd_per_mtok: Decimal | None
    samples: int = 0
    failed: int = 0
    ttft_p50: float | None = None
    ttft_p90: float | None = None
    itl_p50: float | None = None
    itl_p90: float | None = None
    last_seen: datetime | None = None
    attempts: int = 0  # upstream attempts through this gateway since it started
    attempt_errors: int = 0
    errors: list[str] = field(default_factory=list)  # the most common error texts, for the tooltip

    @property
    def error_rate(self) -> float | None:
        return self.failed / self.samples if self.samples else None

    @property
    def attempt_error_rate(self) -> float | None:
        return self.attempt_errors / self.attempts if self.attempts else None


@dataclass(frozen=True)
class EndpointsView:
    rows: list[EndpointRow]  # endpoints with samples or traffic, by name
    ttft: dict[str, list[tuple[float, float]]]  # endpoint -> (epoch seconds, ms)
    itl: dict[str, list[tuple[float, float]]]
    regions: list[str]
    runs: int  # benchmark runs in the window (and region)
    last_run: datetime | None


def _tables() -> tuple[Table, Table]:
    from pointsman.stats.models import BenchRun, LatencySample

    return cast(Table, LatencySample.__table__), cast(Table, BenchRun.__table__)


def stats_tables_ready(engine: Engine) -> bool:
    """Whether the database has the stats tables (``pointsman db upgrade`` creates them)."""
    try:
        samples, _ = _tables()
    except ImportError:  # a Pointsman without the stats part: nothing was ever measured
        return False
    try:
        with engine.connect().execution_options(pointsman_read_only=True) as conn:
            conn.execute(select(samples.c.id).limit(1)).all()
    except (OperationalError, ProgrammingError):
        return False
    return True


def read_samples(
    engine: Engine, *, since: datetime, region: str | None, limit: int = 50_000
) -> tuple[list[Sample], list[str], int, datetime | None]:
    """Samples newer than ``since`` (in ``region`` when given, oldest first, the newest ``limit``), every
    region seen, and the number and newest start of benchmark runs in that window."""
    samples, runs = _tables()
    query = select(
        samples.c.endpoint,
        samples.c.region,
        samples.c.created_at,
        samples.c.ok,
        samples.c.ttft_ms,
        samples.c.itl_ms,
        samples.c.source,
        samples.c.run_id,
        samples.c.error,
    ).where(samples.c.created_at >= since)
    run_query = select(func.count(), func.max(runs.c.started_at)).where(runs.c.started_at >= since)
    if region:
        query = query.where(samples.c.region == region)
        run_query = run_query.where(runs.c.region == region)
    with engine.connect().execution_options(pointsman_read_only=True) as conn:
        rows = conn.execute(query.order_by(samples.c.created_at.desc()).limit(limit)).all()
        regions = sorted(
            {r for (r,) in conn.execute(select(samples.c.region).distinct()).all()}
            | {r for (r,) in conn.execute(select(runs.c.region).distinct()).all()}
        )
        run_count, last_run = conn.execute(run_query).one()
    found = [
        Sample(
            endpoint=r.endpoint,
            region=r.region,
            at=r.created_at,
            ok=bool(r.ok),
            ttft_ms=r.ttft_ms,
            itl_ms=r.itl_ms,
            source=r.source,
            run_id=r.run_id,
            error=r.error,
        )
        for r in reversed(rows)
    ]
    return found, regions, int(run_count or 0), last_run


def attempts_by_endpoint(metrics: GatewayMetrics | None) -> dict[str, tuple[int, int]]:
    """Upstream attempts per endpoint since the gateway started: (all, failed), from its own counters."""
    out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    if metrics is None:
        return {}
    for metric in metrics.attempts.collect():
        for s in metric.samples:
            if not s.name.endswith("_total"):
                continue
            count = int(s.value)
            entry = out[s.labels["endpoint"]]
            entry[0] += count
            if s.labels["outcome"] != "ok":
                entry[1] += count
    return {k: (v[0], v[1]) for k, v in out.items()}


def _quantile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _series(samples: Iterable[Sample], metric: str) -> dict[str, list[tuple[float, float]]]:
    """Per endpoint: one point per benchmark run (median of its ok requests, at the run's first sample) and
    one per time bin of traffic (median), so a chart shows at most a few dozen points per endpoint."""
    ok = [s for s in samples if s.ok and getattr(s, metric) is not None]
    if not ok:
        return {}
    lo = min(s.at.timestamp() for s in ok)
    hi = max(s.at.timestamp() for s in ok)
    width = max((hi - lo) / TRAFFIC_BINS, 1e-6)
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in ok:
        if s.source == "benchmark" and s.run_id:
            groups[(s.endpoint, "run:" + s.run_id)].append(s)
        else:
            groups[(s.endpoint, f"bin:{int((s.at.timestamp() - lo) / width)}")].append(s)
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for (endpoint, _), members in groups.items():
        at = min(m.at.timestamp() for m in members)
        value = statistics.median(float(getattr(m, metric)) for m in members)
        out[endpoint].append((at, value))
    return {k: _thin(sorted(v), lo, hi) for k, v in sorted(out.items())}


def _thin(points: list[tuple[float, float]], lo: float, hi: float) -> list[tuple[float, float]]:
    """At most ``MAX_POINTS`` points: when there are more (many benchmark runs in a long range), the median of
    each of ``MAX_POINTS`` equal time bins, at the bin's first point."""
    if len(points) <= MAX_POINTS:
        return points
    width = max((hi - lo) / MAX_POINTS, 1e-6)
    bins: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for at, value in points:
        bins[min(int((at - lo) / width), MAX_POINTS - 1)].append((at, value))
    return [(group[0][0], statistics.median(v for _, v in group)) for _, group in sorted(bins.items())]


def build_view(
    samples: Sequence[Sample],
    regions: list[str],
    runs: int,
    last_run: datetime | None,
    catalog: Catalog,
    attempts: dict[str, tuple[int, int]],
) -> EndpointsView:
    """Figures per endpoint over ``samples`` (plus the gateway's attempt counters) and the chart series."""
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        by_endpoint[s.endpoint].append(s)
    table = catalog.endpoint_table
    rows = []
    for name in sorted(set(by_endpoint) | set(attempts)):
        endpoint = table.get(name)
        group = by_endpoint.get(name, [])
        good = [s for s in group if s.ok]
        ttfts = [s.ttft_ms for s in good if s.ttft_ms is not None]
        itls = [s.itl_ms for s in good if s.itl_ms is not None]
        error_texts: dict[str, int] = defaultdict(int)
        for s in group:
            if not s.ok:
                error_texts[s.error or "failed"] += 1
        all_attempts, failed_attempts = attempts.get(name, (0, 0))
        rows.append(
            EndpointRow(
                endpoint=name,
                input_usd_per_mtok=endpoint.input_usd_per_mtok if endpoint else None,
                output_usd_per_mtok=endpoint.output_usd_per_mtok if endpoint else None,
                blended_usd_per_mtok=endpoint.blended_usd_per_mtok() if endpoint else None,
                samples=len(group),
                failed=len(group) - len(good),
                ttft_p50=_quantile(ttfts, 0.5),
                ttft_p90=_quantile(ttfts, 0.9),
                itl_p50=_quantile(itls, 0.5),
                itl_p90=_quantile(itls, 0.9),
                last_seen=max((s.at for s in group), default=None),
                attempts=all_attempts,
                attempt_errors=failed_attempts,
                errors=[t for t, _ in sorted(error_texts.items(), key=lambda kv: -kv[1])[:3]],
            )
        )
    return EndpointsView(
        rows=rows,
        ttft=_series(samples, "ttft_ms"),
        itl=_series(samples, "itl_ms"),
        regions=regions,
        runs=runs,
        last_run=last_run,
    )


def catalogue_prices(catalog: Catalog) -> list[Any]:
    """Every catalogue endpoint, for the price table (by name)."""
    return sorted(catalog.endpoint_table.values(), key=lambda e: e.name)
