"""The stats store on SQLite and on real PostgreSQL: runs, samples, validation of bad data, pruning, and the
rolling figures read by two gateway replicas sharing one database."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from _stats_helpers import sqlite_store, two_provider_catalog

from pointsman.db import create_db_engine, upgrade, utcnow
from pointsman.errors import UnknownNameError
from pointsman.ledger.testing import postgres_available, temporary_postgres_schema
from pointsman.stats.figures import StatsLatency
from pointsman.stats.store import Sample, StatsStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StatsStore]:
    if request.param == "sqlite":
        s = sqlite_store(tmp_path)
        yield s
        s.close()
        return
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with temporary_postgres_schema() as url:
        engine = create_db_engine(url)
        upgrade(engine)
        s = StatsStore(engine)
        yield s
        s.close()


def test_runs_round_trip(store: StatsStore) -> None:
    run = store.start_run(
        region="eu", endpoints=2, planned_requests=12, estimate_usd=Decimal("0.0123"), budget_usd=Decimal("1")
    )
    assert run.status == "running" and run.finished_at is None and run.estimate_usd == Decimal("0.0123")
    assert store.last_run_started("eu") == run.started_at and store.last_run_started("us") is None
    done = store.finish_run(run.id, status="done", cost_usd=Decimal("0.000123456789"), note="ok")
    assert (
        done.status == "done" and done.cost_usd == Decimal("0.000123456789") and done.finished_at is not None
    )
    assert [r.id for r in store.runs(region="eu")] == [run.id] and store.runs(region="us") == []
    with pytest.raises(UnknownNameError):
        store.finish_run("nope", status="done", cost_usd=Decimal(0))
    with pytest.raises(UnknownNameError):
        store.run("nope")


def test_samples_round_trip_and_filters(store: StatsStore) -> None:
    run = store.start_run(
        region="eu", endpoints=1, planned_requests=1, estimate_usd=Decimal(0), budget_usd=None
    )
    full = Sample(
        "m@p", "benchmark", True, "eu", run_id=run.id, prompt="short", ttft_ms=12.5, itl_ms=1.5, itl_p90_ms=2.5,
        tokens_per_s=600.0, input_tokens=200, output_tokens=30, usage_reported=True,
        cost_usd=Decimal("0.000123"), duration_ms=60.0,
    )  # fmt: skip
    traffic = Sample("m@q", "traffic", True, "us", ttft_ms=40.0)
    failed = Sample("m@q", "traffic", False, "us", error="upstream_timeout: slow")
    assert store.add_samples([full, traffic, failed]) == 3
    assert store.add_samples([]) == 0
    (back,) = store.samples(run_id=run.id)
    assert back == full
    assert len(store.samples(region="us")) == 2 and len(store.samples(endpoints=["m@p"])) == 1
    assert [s.ok for s in store.samples(source="traffic")] == [True, False]
    assert store.samples(ok=False) == [failed]
    assert store.samples(since=utcnow() + timedelta(seconds=5)) == []
    assert store.failures(since=utcnow() - timedelta(hours=1)) == {"m@q": 1}


def test_bad_measurements_are_stored_as_failures_not_figures(store: StatsStore) -> None:
    bad = [
        Sample("m@p", "traffic", True, ttft_ms=-5.0),
        Sample("m@p", "traffic", True, ttft_ms=10.0, itl_ms=math.nan),
        Sample("m@p", "traffic", True, ttft_ms=math.inf),
        Sample("m@p", "traffic", True),  # ok without a TTFT
    ]
    store.add_samples(bad)
    stored = store.samples()
    assert all(not s.ok and (s.error or "").startswith("invalid measurement") for s in stored)
    assert all(s.ttft_ms is None and s.itl_ms is None for s in stored)
    catalog = two_provider_catalog({"p": "http://127.0.0.1:9/v1"})
    figure = StatsLatency(store).figures(catalog.endpoints())["m@p"]
    assert figure.is_prior and "4 failed request(s)" in (figure.note or "")


def test_prune_deletes_old_samples_and_their_runs(store: StatsStore) -> None:
    old = utcnow() - timedelta(days=10)
    run = store.start_run(
        region="eu", endpoints=1, planned_requests=1, estimate_usd=Decimal(0), budget_usd=None, started_at=old
    )
    store.finish_run(run.id, status="done", cost_usd=Decimal(0))
    store.add_samples([Sample("m@p", "benchmark", True, run_id=run.id, created_at=old, ttft_ms=1.0)])
    store.add_samples([Sample("m@p", "traffic", True, ttft_ms=2.0)])
    assert store.prune(utcnow() - timedelta(days=7)) == 1
    assert [s.ttft_ms for s in store.samples()] == [2.0]
    assert store.runs() == []


def test_two_replicas_share_one_store(store: StatsStore) -> None:
    """Each replica caches its own figures, but both read what either wrote."""
    catalog = two_provider_catalog({"p": "http://127.0.0.1:9/v1"})
    replica_a = StatsLatency(store, refresh_s=3600)
    replica_b = StatsLatency(StatsStore(store.engine), refresh_s=3600)
    assert replica_a.figures(catalog.endpoints())["m@p"].is_prior
    store.add_samples([Sample("m@p", "traffic", True, "eu", ttft_ms=321.0, itl_ms=4.0)])
    assert replica_b.figures(catalog.endpoints())["m@p"].ttft_ms == 321.0
    assert replica_a.figures(catalog.endpoints())["m@p"].is_prior  # still cached
    replica_a.invalidate()
    assert replica_a.figures(catalog.endpoints())["m@p"].ttft_ms == 321.0


def test_claim_run_lets_one_of_several_schedulers_win(store: StatsStore) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def claim(region: str) -> object:
        return store.claim_run(
            region=region,
            endpoints=1,
            planned_requests=1,
            estimate_usd=Decimal(0),
            budget_usd=None,
            unless_started_within_s=3600,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(claim, ["eu"] * 8 + ["us"] * 8))
    assert sum(r is not None for r in results[:8]) == 1 and sum(r is not None for r in results[8:]) == 1
    assert len(store.runs(region="eu")) == 1 and len(store.runs(region="us")) == 1
    later = utcnow() + timedelta(hours=2)
    assert store.claim_run(
        region="eu", endpoints=1, planned_requests=1, estimate_usd=Decimal(0), budget_usd=None,
        unless_started_within_s=3600, started_at=later,
    ) is not None  # fmt: skip
