"""Live latency and cost measurements per endpoint: benchmark runs, passive traffic samples, and the rolling
figures the objective reads.

    store.py      benchmark runs and samples, through ``pointsman.db`` (SQLite or PostgreSQL)
    bench.py      the benchmark runner: standard prompts streamed several times per endpoint
    scheduler.py  re-runs benchmarks every N hours, tagged with a region
    telemetry.py  passive samples from the gateway's routed streams, written in batches
    figures.py    ``StatsLatency``: a cached ``LatencySource`` over the store (P90 or median over a window)
    plots.py      TTFT and ITL over time per endpoint, as a PNG
    service.py    the gateway's hook: builds the above from ``[stats]`` settings in the lifespan
"""

from __future__ import annotations

__all__ = ["Sample", "StatsLatency", "StatsSettings", "StatsStore"]


from pointsman.stats.settings import StatsSettings
from pointsman.stats.store import Sample, StatsStore
