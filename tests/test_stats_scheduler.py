"""The benchmark schedule (interval in seconds here) and the traffic telemetry buffer."""

from __future__ import annotations

import asyncio
import itertools
import time
from decimal import Decimal
from pathlib import Path

import pytest
from _stats_helpers import sqlite_store

from pointsman.db import create_db_engine, upgrade
from pointsman.errors import InvalidRequestError
from pointsman.stats.scheduler import BenchScheduler
from pointsman.stats.store import Sample, StatsStore
from pointsman.stats.telemetry import TrafficTelemetry


def _recording_run(store: StatsStore, region: str, calls: list[float]):  # type: ignore[no-untyped-def]
    async def run_once() -> None:
        calls.append(time.monotonic())
        await asyncio.to_thread(
            store.start_run,
            region=region,
            endpoints=1,
            planned_requests=1,
            estimate_usd=Decimal(0),
            budget_usd=None,
        )

    return run_once


def test_the_schedule_fires_every_interval(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    calls: list[float] = []
    scheduler = BenchScheduler(_recording_run(store, "eu", calls), store, region="eu", interval_s=0.3)

    async def go() -> None:
        assert await scheduler.tick()  # nothing ran yet: due now
        assert not await scheduler.tick()  # just ran
        await scheduler.run_forever(max_runs=3)

    asyncio.run(go())
    assert len(calls) == 3 and scheduler.runs == 3 and scheduler.failures == 0
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(0.28 <= g < 1.5 for g in gaps), gaps
    assert len(store.runs(region="eu")) == 3


def test_a_recent_run_by_another_process_of_the_region_counts(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    store.start_run(region="eu", endpoints=1, planned_requests=1, estimate_usd=Decimal(0), budget_usd=None)
    calls: list[float] = []
    eu = BenchScheduler(_recording_run(store, "eu", calls), store, region="eu", interval_s=3600)
    us = BenchScheduler(_recording_run(store, "us", calls), store, region="us", interval_s=3600)

    async def go() -> tuple[float, bool, bool]:
        return await eu.due_in(), await eu.tick(), await us.tick()

    due, ran_eu, ran_us = asyncio.run(go())
    assert 3590 < due <= 3600 and not ran_eu and ran_us and len(calls) == 1


def test_a_failing_run_is_logged_and_retried_next_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = sqlite_store(tmp_path)
    attempts: list[float] = []

    async def failing() -> None:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise InvalidRequestError("the benchmark could cost up to $9, above its budget; raise --budget")
        raise RuntimeError("a bug")

    scheduler = BenchScheduler(failing, store, region="eu", interval_s=0.2)

    async def go() -> None:
        await scheduler.run_forever(max_runs=2)

    asyncio.run(go())
    assert scheduler.failures == 2 and len(attempts) == 2 and attempts[1] - attempts[0] >= 0.19
    assert "raise --budget" in caplog.text and "a bug" in caplog.text


def test_start_and_aclose(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    calls: list[float] = []
    scheduler = BenchScheduler(_recording_run(store, "eu", calls), store, region="eu", interval_s=0.1)

    async def go() -> None:
        scheduler.start()
        await asyncio.sleep(0.35)
        await scheduler.aclose()

    asyncio.run(go())
    assert 2 <= len(calls) <= 5


def test_telemetry_buffer_drops_the_oldest_and_flushes_in_batches(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    telemetry = TrafficTelemetry(store, region="eu", buffer=3)
    for ttft in (1.0, 2.0, 3.0, 4.0, 5.0):
        telemetry.observe("m@p", ttft_s=ttft / 1000, chunk_times=[0.0, 0.010, 0.030], usage=None)
    assert telemetry.recorded == 5 and telemetry.dropped == 2
    assert asyncio.run(telemetry.flush()) == 3 and asyncio.run(telemetry.flush()) == 0
    stored = store.samples()
    assert [s.ttft_ms for s in stored] == [3.0, 4.0, 5.0]
    assert all(s.region == "eu" and s.source == "traffic" for s in stored)
    assert stored[0].itl_ms == pytest.approx(15.0) and stored[0].itl_p90_ms == pytest.approx(19.0)
    assert not stored[0].usage_reported


def test_telemetry_keeps_samples_while_the_database_is_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'late.db'}")  # not migrated yet: inserts fail
    telemetry = TrafficTelemetry(StatsStore(engine), region="eu")
    telemetry.record(Sample("m@p", "traffic", True, ttft_ms=9.0))
    assert asyncio.run(telemetry.flush()) == 0 and "retrying later" in caplog.text
    upgrade(engine)
    assert asyncio.run(telemetry.flush()) == 1 and telemetry.written == 1
    assert [s.ttft_ms for s in StatsStore(engine).samples()] == [9.0]


def test_two_replicas_share_one_schedule(tmp_path: Path) -> None:
    """Two schedulers of one region on one store (two gateway replicas): one benchmark per interval."""
    from pointsman.gateway.testing import fake_catalog
    from pointsman.providers.fake import FakeConfig, running_fake_provider
    from pointsman.stats.bench import BenchConfig, plan_benchmark, run_scheduled

    store = sqlite_store(tmp_path)
    with running_fake_provider(FakeConfig(tokens=2)) as fake:
        catalog = fake_catalog(fake.base_url, {"m@p": "fake-model"})
        plan = plan_benchmark(catalog, BenchConfig(repeats=1, max_tokens=2, prompts=("short",), region="eu"))
        results: list[object] = []

        async def run_once() -> None:
            results.append(await run_scheduled(plan, store, interval_s=60))

        replicas = [BenchScheduler(run_once, store, region="eu", interval_s=60) for _ in range(2)]

        async def race() -> None:
            # Both replicas found the run due and start it at the same moment: the claim lets exactly one run.
            await asyncio.gather(run_once(), run_once())

        asyncio.run(race())
        assert len(results) == 2 and sum(r is not None for r in results) == 1

        async def ticks() -> list[bool]:
            return list(await asyncio.gather(*(r.tick() for r in replicas)))

        # Afterwards neither replica finds a run due within the interval.
        assert asyncio.run(ticks()) == [False, False] and len(results) == 2
    assert len(store.runs(region="eu")) == 1 and fake.stats.total() == 1
