"""The console's read-only queries on SQLite and on real PostgreSQL: exact spend by day and by model, recent
requests with their latency, one account never mixed with another, and latency samples by range and region."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pointsman.console.endpoints import read_samples, stats_tables_ready
from pointsman.console.spend import read_spend
from pointsman.db import create_db_engine, upgrade
from pointsman.ledger.ledger import Ledger
from pointsman.ledger.money import Price
from pointsman.ledger.testing import postgres_available, temporary_postgres_schema
from pointsman.stats.store import Sample, StatsStore

PRICE = Price(Decimal(1), Decimal(2))  # USD per 1M tokens in and out


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        e = create_db_engine(f"sqlite:///{tmp_path}/console.db")
        upgrade(e)
        yield e
        e.dispose()
        return
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with temporary_postgres_schema() as url:
        e = create_db_engine(url)
        upgrade(e)
        yield e
        e.dispose()


class Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def _request(ledger: Ledger, clock: Clock, account: int, endpoint: str, out: int, took_s: float) -> None:
    hold = ledger.reserve(account, prices=PRICE, input_tokens=1000, max_output_tokens=500, endpoint=endpoint)
    clock.now += timedelta(seconds=took_s)
    ledger.settle(hold.reservation_id, price=PRICE, input_tokens=1000, output_tokens=out, endpoint=endpoint)


def test_spend_by_day_model_and_endpoint_is_exact_and_per_account(engine: Engine) -> None:
    clock = Clock(datetime(2026, 11, 28, 23, 59, 0, tzinfo=UTC))
    ledger = Ledger(engine, clock=clock)
    alice = ledger.create_account("alice", grant_usd=10).id
    bob = ledger.create_account("bob", grant_usd=10).id
    _request(ledger, clock, alice, "m1@p", 100, 2.5)  # 11-28 23:59:02.5
    clock.now = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    _request(ledger, clock, alice, "m1@q", 200, 0.25)
    _request(ledger, clock, alice, "m2@p", 0, 1.0)
    _request(ledger, clock, bob, "m3@p", 500, 1.0)
    hold = ledger.reserve(
        alice, prices=PRICE, input_tokens=1000, max_output_tokens=500, endpoint="m1@p"
    )  # open

    view = read_spend(ledger, alice, days=4, recent=2)
    cost = {100: 1200 * 10**6, 200: 1400 * 10**6, 0: 1000 * 10**6}  # pico-USD: 1000 in × 1 + out × 2
    assert view.account_name == "alice" and view.spent_pico == sum(cost.values())
    assert view.held_pico == hold.amount_pico
    assert view.balance_pico == 10 * 10**12 - sum(cost.values()) - hold.amount_pico
    assert view.by_day == [
        (date(2026, 11, 27), 0, 0),
        (date(2026, 11, 28), cost[100], 1),
        (date(2026, 11, 29), 0, 0),
        (date(2026, 11, 30), cost[200] + cost[0], 2),
    ]
    assert view.by_model == [("m1", cost[100] + cost[200], 2), ("m2", cost[0], 1)]
    assert view.traffic == [("m1@p", 1), ("m1@q", 1), ("m2@p", 1)] and view.requests == 3
    assert [(r.endpoint, r.output_tokens, r.cost_pico) for r in view.recent] == [
        ("m2@p", 0, cost[0]),
        ("m1@q", 200, cost[200]),
    ]
    assert [r.latency_s for r in view.recent] == pytest.approx([1.0, 0.25])
    assert "m3@p" not in {e for e, _ in view.traffic}
    bob_view = read_spend(ledger, bob, days=1)
    assert bob_view.traffic == [("m3@p", 1)] and bob_view.by_day == [(date(2026, 11, 30), 2000 * 10**6, 1)]


def test_an_account_without_requests_has_empty_figures(engine: Engine) -> None:
    ledger = Ledger(engine)
    carol = ledger.create_account("carol", grant_usd=1).id
    view = read_spend(ledger, carol, days=3)
    assert view.recent == [] and view.by_model == [] and view.traffic == [] and view.spent_pico == 0
    assert [n for _, _, n in view.by_day] == [0, 0, 0]


def test_samples_by_range_and_region(engine: Engine) -> None:
    store = StatsStore(engine)
    now = datetime.now(UTC)
    run = store.start_run(
        region="eu", endpoints=1, planned_requests=2, estimate_usd=Decimal("0.01"), budget_usd=None
    )
    store.add_samples(
        [
            Sample("a@p", "benchmark", True, "eu", now - timedelta(hours=1), run_id=run.id, ttft_ms=100.0),
            Sample("a@p", "traffic", True, "us", now - timedelta(minutes=5), ttft_ms=80.0, itl_ms=4.0),
            Sample("b@p", "traffic", False, "us", now - timedelta(minutes=4), error="timeout"),
            Sample("a@p", "traffic", True, "us", now - timedelta(days=3), ttft_ms=70.0),
        ]
    )
    assert stats_tables_ready(engine)
    found, regions, runs, last_run = read_samples(engine, since=now - timedelta(days=1), region=None)
    assert [(s.endpoint, s.region, s.ok) for s in found] == [
        ("a@p", "eu", True),
        ("a@p", "us", True),
        ("b@p", "us", False),
    ]
    assert regions == ["eu", "us"] and runs == 1 and last_run == run.started_at
    us, _, us_runs, _ = read_samples(engine, since=now - timedelta(days=1), region="us")
    assert [s.ttft_ms for s in us] == [80.0, None] and us_runs == 0
    newest, _, _, _ = read_samples(engine, since=now - timedelta(days=7), region=None, limit=2)
    assert [s.endpoint for s in newest] == ["a@p", "b@p"]  # the newest two, oldest first
