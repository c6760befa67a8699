"""How long the ledger's work for one request takes (authenticate + reserve + settle), on SQLite and on
PostgreSQL, sequentially and from concurrent threads sharing one account (the worst case: every request
updates the same account row).

    .venv/bin/python benchmarks/ledger.py [--requests 400] [--threads 1,16] [--postgres URL]

Prints, per backend and thread count: the median and p99 latency of one request's ledger work and the
throughput in requests per second. No assertions: numbers to compare, side by side.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

from pointsman.db import create_db_engine, upgrade
from pointsman.ledger import KeyStore, Ledger, Price
from pointsman.ledger.testing import DEFAULT_TEST_POSTGRES_URL, postgres_available, temporary_postgres_schema

PRICE = Price(Decimal("3"), Decimal("15"))


def run(url: str, requests: int, threads: int) -> tuple[float, float, float]:
    engine = create_db_engine(url)
    upgrade(engine)
    ledger = Ledger(engine)
    keys = KeyStore(ledger)
    key = keys.create(f"bench-{threads}-{time.monotonic_ns()}", credit_usd=100_000).key
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = requests // threads

    def worker() -> None:
        mine = []
        for _ in range(per_thread):
            t0 = time.perf_counter()
            info = keys.authenticate(key)
            hold = ledger.reserve(
                info.account_id, prices=PRICE, input_tokens=500, max_output_tokens=256, api_key_id=info.id
            )
            ledger.settle(hold.reservation_id, price=PRICE, input_tokens=500, output_tokens=100)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    started = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - started
    engine.dispose()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies) * 1000, p99 * 1000, len(latencies) / wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--threads", default="1,16")
    parser.add_argument("--postgres", default=DEFAULT_TEST_POSTGRES_URL)
    args = parser.parse_args()
    thread_counts = [int(t) for t in args.threads.split(",")]
    print(f"{'backend':<10} {'threads':>7} {'median ms':>10} {'p99 ms':>8} {'req/s':>8}")
    with tempfile.TemporaryDirectory() as tmp:
        for threads in thread_counts:
            med, p99, rps = run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.requests, threads)
            print(f"{'sqlite':<10} {threads:>7} {med:>10.2f} {p99:>8.2f} {rps:>8.0f}")
    reason = postgres_available(args.postgres)
    if reason:
        print(f"postgresql skipped: {reason}")
        return
    with temporary_postgres_schema(args.postgres) as url:
        for threads in thread_counts:
            med, p99, rps = run(url, args.requests, threads)
            print(f"{'postgresql':<10} {threads:>7} {med:>10.2f} {p99:>8.2f} {rps:>8.0f}")


if __name__ == "__main__":
    main()
