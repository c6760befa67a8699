"""What reading measured latency costs a routed request: ``LatencySource.figures`` for every endpoint of the
shipped catalogue, three ways, side by side:

- ``priors``: the catalogue priors (no measurements; the floor);
- ``cached``: ``StatsLatency`` as the gateway uses it (figures cached, reloaded at most every 30 s);
- ``uncached``: ``StatsLatency(refresh_s=0)``, three queries on every read (what caching avoids).

The store is SQLite in a temporary directory holding ``--samples`` usable samples per endpoint inside the
window (benchmark and traffic). Each figure is the median over ``--repeats`` timed calls.

Run:  nice -n 10 .venv/bin/python benchmarks/stats_figures.py [--samples 200] [--repeats 200]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from pointsman.catalog import load_catalog
from pointsman.db import create_db_engine, upgrade, utcnow
from pointsman.latency import CatalogPriors
from pointsman.stats.figures import StatsLatency
from pointsman.stats.store import Sample, StatsStore


def _median_us(call: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=200, help="usable samples per endpoint")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per variant")
    args = parser.parse_args()

    catalog = load_catalog()
    endpoints = catalog.endpoints()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{Path(tmp) / 'stats.db'}")
        upgrade(engine)
        store = StatsStore(engine)
        now = utcnow()
        for e in endpoints:
            store.add_samples(
                Sample(
                    e.name,
                    rng.choice(("benchmark", "traffic")),
                    True,
                    created_at=now - timedelta(minutes=rng.uniform(0, 300)),
                    ttft_ms=rng.uniform(50, 2000),
                    itl_ms=rng.uniform(2, 50),
                )
                for _ in range(args.samples)
            )
        priors = CatalogPriors()
        cached = StatsLatency(store)
        uncached = StatsLatency(store, refresh_s=0)
        cached.figures(endpoints)  # the first read loads the cache; later ones are what requests pay
        rows = [
            ("priors", _median_us(lambda: priors.figures(endpoints), args.repeats)),
            ("cached", _median_us(lambda: cached.figures(endpoints), args.repeats)),
            ("uncached", _median_us(lambda: uncached.figures(endpoints), max(args.repeats // 10, 5))),
        ]
        store.close()
    floor = rows[0][1]
    print(
        f"{len(endpoints)} endpoints, {args.samples} samples each ({len(endpoints) * args.samples} in the store)"
    )
    print(f"{'variant':<10} {'median per read':>16} {'× priors':>9}")
    for name, us in rows:
        print(f"{name:<10} {us:>13.0f} µs {us / floor:>9.1f}")


if __name__ == "__main__":
    main()
