"""The objective reads the measured figures: when a provider's TTFT jumps from 100 ms to 2 s, the router
moves to another provider of the same model."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _stats_helpers import sqlite_store, two_provider_catalog

from pointsman.providers.fake import FakeConfig, running_fake_provider
from pointsman.router import Router
from pointsman.scorer.prior import PriorScorer
from pointsman.stats.bench import BenchConfig, plan_benchmark, run_benchmark
from pointsman.stats.figures import StatsLatency

ROUTER = "router@q:1|t:0.001|models:m"  # quality ties (one model); TTFT decides


@pytest.mark.slow
def test_router_moves_to_another_provider_when_ttft_jumps_from_100ms_to_2s(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    with (
        running_fake_provider(FakeConfig(ttft_s=0.1, tokens=3)) as alpha,
        running_fake_provider(FakeConfig(ttft_s=0.6, tokens=3)) as beta,
    ):
        catalog = two_provider_catalog({"alpha": alpha.base_url, "beta": beta.base_url})
        latency = StatsLatency(store, refresh_s=0)  # every read reloads (the cache is tested elsewhere)
        router = Router(catalog=catalog, scorer=PriorScorer(), latency=latency)
        config = BenchConfig(repeats=2, concurrency=8, max_tokens=3, prompts=("short",))

        # Before any measurement both are priors (100 ms each): flagged as such in the explanation.
        before = router.rank("Which train should I take?", ROUTER)
        assert all("ttft: catalogue prior" in r.flags for r in before.ranked)
        assert any("catalogue priors, not measurements" in note for note in before.notes)

        asyncio.run(run_benchmark(plan_benchmark(catalog, config), store))
        fast = router.rank("Which train should I take?", ROUTER)
        assert fast.chosen.endpoint == "m@alpha"
        assert fast.chosen.ttft_ms < 600 and "ttft: catalogue prior" not in fast.chosen.flags
        assert [r.endpoint for r in fast.ranked] == ["m@alpha", "m@beta"]

        alpha.config = FakeConfig(ttft_s=2.0, tokens=3)  # the provider becomes slow
        asyncio.run(run_benchmark(plan_benchmark(catalog, config), store))
        slow = router.rank("Which train should I take?", ROUTER)
    assert slow.chosen.endpoint == "m@beta"
    alpha_figure = next(r for r in slow.ranked if r.endpoint == "m@alpha")
    assert alpha_figure.ttft_ms >= 2000  # the P90 over the window sees the slow run at once
    ttft_term = next(t for t in alpha_figure.terms if t.metric == "ttft")
    assert ttft_term.contribution == pytest.approx(-0.001 * alpha_figure.ttft_ms)


def test_median_needs_most_samples_slow_before_it_moves(tmp_path: Path) -> None:
    """P90 (the default) reacts to a minority of slow samples; the median does not."""
    from pointsman.stats.store import Sample

    store = sqlite_store(tmp_path)
    catalog = two_provider_catalog({"alpha": "http://127.0.0.1:9/v1", "beta": "http://127.0.0.1:9/v1"})
    samples = [Sample("m@alpha", "benchmark", True, ttft_ms=100.0, itl_ms=10.0) for _ in range(7)]
    samples += [Sample("m@alpha", "traffic", True, ttft_ms=2000.0, itl_ms=10.0) for _ in range(3)]
    samples += [Sample("m@beta", "benchmark", True, ttft_ms=300.0, itl_ms=10.0) for _ in range(10)]
    store.add_samples(samples)
    p90 = Router(catalog=catalog, scorer=PriorScorer(), latency=StatsLatency(store))
    median = Router(catalog=catalog, scorer=PriorScorer(), latency=StatsLatency(store, statistic="median"))
    assert p90.rank("hi", ROUTER).chosen.endpoint == "m@beta"
    assert median.rank("hi", ROUTER).chosen.endpoint == "m@alpha"
    blended = StatsLatency(store).figures(catalog.endpoints())["m@alpha"]
    assert blended.source == "benchmark+traffic" and "10 sample(s)" in (blended.note or "")
