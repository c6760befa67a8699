"""The rolling figures: robust statistics over a window, region preference, stale and missing data falling
back to priors with a reason, the cache, and a database that cannot be read."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from _stats_helpers import sqlite_store, two_provider_catalog
from sqlalchemy import text

from pointsman.db import utcnow
from pointsman.stats.figures import StatsLatency, quantile
from pointsman.stats.store import Sample

CATALOG = two_provider_catalog({"a": "http://127.0.0.1:9/v1", "b": "http://127.0.0.1:9/v1"})
A, B = CATALOG.endpoint("m@a"), CATALOG.endpoint("m@b")


def test_quantile_interpolates_like_numpy() -> None:
    import numpy as np

    values = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0]
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))
    assert quantile([4.0], 0.9) == 4.0
    with pytest.raises(AssertionError):
        quantile([], 0.5)


def test_p90_and_median_over_the_window(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    ttfts = [float(v) for v in range(100, 1100, 100)]  # 100 .. 1000
    store.add_samples(Sample("m@a", "benchmark", True, ttft_ms=t, itl_ms=t / 10) for t in ttfts)
    p90 = StatsLatency(store).figures([A])["m@a"]
    median = StatsLatency(store, statistic="median").figures([A])["m@a"]
    assert p90.ttft_ms == pytest.approx(910.0) and p90.itl_ms == pytest.approx(91.0)
    assert median.ttft_ms == pytest.approx(550.0) and median.itl_ms == pytest.approx(55.0)
    assert p90.source == "benchmark" and p90.note == "p90 of 10 sample(s) in the last 6 h"


def test_only_the_newest_max_samples_count(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    now = utcnow()
    old = [
        Sample("m@a", "traffic", True, created_at=now - timedelta(minutes=10), ttft_ms=1000.0)
        for _ in range(5)
    ]
    new = [
        Sample("m@a", "traffic", True, created_at=now - timedelta(minutes=1), ttft_ms=100.0) for _ in range(5)
    ]
    store.add_samples(old + new)
    assert StatsLatency(store, max_samples=5).figures([A])["m@a"].ttft_ms == 100.0
    assert StatsLatency(store, max_samples=10).figures([A])["m@a"].ttft_ms == 1000.0


def test_stale_and_missing_fall_back_to_priors_with_the_reason(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    now = datetime(2026, 6, 1, 12, 0, tzinfo=utcnow().tzinfo)
    store.add_samples([Sample("m@a", "benchmark", True, created_at=now - timedelta(hours=9), ttft_ms=5.0)])
    store.add_samples(
        [Sample("m@a", "benchmark", False, created_at=now - timedelta(hours=1), error="timeout: x")]
    )
    figures = StatsLatency(store, window_s=6 * 3600, clock=lambda: now).figures([A, B])
    stale, missing = figures["m@a"], figures["m@b"]
    assert stale.is_prior and stale.stale and (stale.ttft_ms, stale.itl_ms) == (100.0, 10.0)
    assert stale.note == (
        "catalogue prior: newest measurement is 9.0 h old, outside the 6 h window; 1 failed request(s) in the window"
    )
    assert missing.is_prior and not missing.stale and "never measured" in (missing.note or "")
    # A wider window takes the old sample in.
    assert StatsLatency(store, window_s=10 * 3600, clock=lambda: now).figures([A])["m@a"].ttft_ms == 5.0


def test_min_samples(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    store.add_samples([Sample("m@a", "traffic", True, ttft_ms=7.0) for _ in range(2)])
    assert StatsLatency(store, min_samples=3).figures([A])["m@a"].is_prior
    assert StatsLatency(store, min_samples=2).figures([A])["m@a"].ttft_ms == 7.0


def test_region_preference_and_fallback_to_other_regions(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    store.add_samples([Sample("m@a", "traffic", True, "eu", ttft_ms=50.0) for _ in range(3)])
    store.add_samples([Sample("m@a", "traffic", True, "us", ttft_ms=500.0) for _ in range(3)])
    store.add_samples([Sample("m@b", "traffic", True, "us", ttft_ms=300.0)])
    eu = StatsLatency(store, region="eu").figures([A, B])
    assert eu["m@a"].ttft_ms == 50.0 and (eu["m@a"].note or "").startswith(
        "p90 of 3 sample(s) in the last 6 h;"
    )
    assert eu["m@b"].ttft_ms == 300.0 and "from region(s) us" in (eu["m@b"].note or "")
    everywhere = StatsLatency(store).figures([A])["m@a"]
    assert everywhere.ttft_ms == pytest.approx(500.0) and "6 sample(s)" in (everywhere.note or "")


def test_one_chunk_answers_keep_the_itl_prior(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    store.add_samples([Sample("m@a", "traffic", True, ttft_ms=70.0, itl_ms=None)])
    figure = StatsLatency(store).figures([A])["m@a"]
    assert (
        figure.ttft_ms == 70.0
        and figure.itl_ms == A.itl_prior_ms
        and "ITL is the catalogue prior" in (figure.note or "")
    )


def test_reads_are_cached_and_refresh_after_refresh_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store(tmp_path)
    latency = StatsLatency(store, refresh_s=30)
    for _ in range(100):
        latency.figures([A, B])
    assert latency.refreshes == 1  # 100 reads, one load
    import pointsman.stats.figures as figures_module

    real = figures_module.time.monotonic
    monkeypatch.setattr(figures_module.time, "monotonic", lambda: real() + 31)
    latency.figures([A])
    assert latency.refreshes == 2


def test_an_unreadable_database_keeps_the_last_figures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = sqlite_store(tmp_path)
    store.add_samples([Sample("m@a", "traffic", True, ttft_ms=42.0)])
    latency = StatsLatency(store, refresh_s=0)
    assert latency.figures([A])["m@a"].ttft_ms == 42.0
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE latency_samples"))
    assert latency.figures([A])["m@a"].ttft_ms == 42.0  # kept
    assert "cannot read latency figures" in caplog.text
    fresh = StatsLatency(store)
    assert fresh.figures([A])["m@a"].is_prior  # nothing to keep: priors


def test_background_refresh_keeps_reads_off_the_database(tmp_path: Path) -> None:
    import asyncio

    store = sqlite_store(tmp_path)
    latency = StatsLatency(store, refresh_s=0.1)

    async def go() -> None:
        task = asyncio.create_task(latency.refresh_forever())
        await asyncio.sleep(0.05)
        loads = latency.refreshes
        assert loads == 1 and latency.figures([A])["m@a"].is_prior
        for _ in range(50):
            latency.figures([A, B])
        assert latency.refreshes == loads  # reads never query while the background task runs
        store.add_samples([Sample("m@a", "traffic", True, ttft_ms=42.0)])
        await asyncio.sleep(0.3)
        assert latency.refreshes >= loads + 2 and latency.figures([A])["m@a"].ttft_ms == 42.0
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert StatsLatency(store, refresh_s=0).refreshes == 0
    assert asyncio.run(StatsLatency(store, refresh_s=0).refresh_forever()) is None  # nothing to do
