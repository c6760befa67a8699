"""How long each console page takes to answer as the stats and ledger tables grow, side by side.

A gateway (SQLite ledger, open to one account's key) is built over a temporary database holding, for each size,
``N`` latency samples spread over the last 7 days across 20 endpoints (a tenth of them benchmark runs of 5
requests, the rest traffic, 2% failed) and ``N / 10`` settled requests for the account. Each page is fetched
``--repeats`` times through Starlette's TestClient (no network); the figure is the median in milliseconds.

The Endpoints page reads every sample of the range (capped at 50,000, newest first) and reduces it in Python; the
Spend page runs four aggregate queries whatever the size.

Run:  nice -n 10 .venv/bin/python benchmarks/console_pages.py [--sizes 1000,10000,50000] [--repeats 15]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient

from pointsman.db import utcnow
from pointsman.gateway.app import create_app
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import fake_catalog
from pointsman.ledger.money import Price
from pointsman.settings import Settings
from pointsman.stats.store import Sample, StatsStore

ENDPOINTS = [f"model{i // 4}@provider{i % 4}" for i in range(20)]
PAGES = ("endpoints", "router", "spend")


def _fill(store: StatsStore, ledger: object, account_id: int, n: int, rng: random.Random) -> None:
    now = utcnow()
    samples = []
    run_id: str | None = None
    for i in range(n):
        at = now - timedelta(seconds=rng.uniform(0, 7 * 86400))
        benchmark = i % 10 == 0
        if benchmark and i % 50 == 0:
            run = store.start_run(
                region="eu", endpoints=20, planned_requests=100, estimate_usd=Decimal("0.01"), budget_usd=None
            )
            run_id = run.id
        ok = rng.random() > 0.02
        samples.append(
            Sample(
                endpoint=rng.choice(ENDPOINTS),
                source="benchmark" if benchmark else "traffic",
                ok=ok,
                region=rng.choice(("eu", "us")),
                created_at=at,
                run_id=run_id if benchmark else None,
                error=None if ok else "timeout",
                ttft_ms=rng.uniform(50, 900) if ok else None,
                itl_ms=rng.uniform(5, 40) if ok else None,
            )
        )
    store.add_samples(samples)
    price = Price(Decimal(1), Decimal(2))
    for _ in range(n // 10):
        hold = ledger.reserve(  # type: ignore[attr-defined]
            account_id,
            prices=price,
            input_tokens=100,
            max_output_tokens=100,
            endpoint=rng.choice(ENDPOINTS),
            request_id=uuid.uuid4().hex,
        )
        ledger.settle(hold.reservation_id, price=price, input_tokens=100, output_tokens=rng.randint(1, 100))  # type: ignore[attr-defined]


def _median_ms(client: TestClient, path: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,50000", help="samples per database, comma-separated")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(0)
    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=f"sqlite:///{tmp}/pm.db", config_file=None)
            catalog = fake_catalog("http://127.0.0.1:9/v1", {e: "m" for e in ENDPOINTS})
            app = create_app(settings, gateway_settings=GatewaySettings(billing="ledger"), catalog=catalog)
            with TestClient(app) as client:
                billing = app.state.gateway.billing
                created = billing.keys.create("bench", credit_usd="1000000")
                _fill(StatsStore(billing.ledger.engine), billing.ledger, created.info.account_id, n, rng)
                client.headers["authorization"] = f"Bearer {created.key}"
                results[n] = {page: _median_ms(client, f"/console/{page}", args.repeats) for page in PAGES}
    print(f"median ms per page over {args.repeats} requests (SQLite, 20 endpoints, 7 days of samples)")
    print(f"{'samples':>9} {'requests':>9} " + " ".join(f"{p:>10}" for p in PAGES))
    for n, row in results.items():
        print(f"{n:>9} {n // 10:>9} " + " ".join(f"{row[p]:>10.1f}" for p in PAGES))
    first, last = sizes[0], sizes[-1]
    print(
        f"endpoints page: {results[last]['endpoints'] / results[first]['endpoints']:.1f}x slower at "
        f"{last} samples than at {first}; spend page: {results[last]['spend'] / results[first]['spend']:.1f}x"
    )


if __name__ == "__main__":
    main()
