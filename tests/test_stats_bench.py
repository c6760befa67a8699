"""The benchmark runner against fake providers on loopback with known TTFT/ITL, and bad data."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from _stats_helpers import sqlite_store

from pointsman.errors import InvalidRequestError, MissingKeyError, UnknownNameError
from pointsman.gateway.testing import fake_catalog
from pointsman.providers.base import Timeouts
from pointsman.providers.fake import FakeConfig, running_fake_provider
from pointsman.stats.bench import BUDGET_SKIP, BenchConfig, plan_benchmark, run_benchmark
from pointsman.stats.figures import StatsLatency, quantile
from pointsman.stats.prompts import prompt_tokens

# Measured TTFT includes the HTTP round trip and a busy 2-core machine; ITL is a gap between two sleeps.
TTFT_SLACK_MS = 150.0
ITL_SLACK_MS = 15.0


def test_standard_prompts_are_about_200_and_1000_tokens() -> None:
    # pointsman.tokens errs high by 10-40%; real tokenizers land near 200 and 1,000.
    assert 200 <= prompt_tokens("short") <= 200 * 1.7
    assert 1000 <= prompt_tokens("long") <= 1000 * 1.7


def test_recorded_figures_match_the_fake_providers_latency(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    with running_fake_provider(FakeConfig(tokens=12)) as fake:
        catalog = fake_catalog(
            fake.base_url,
            {"m@fast": "fake-model#ttft_ms=40&itl_ms=5", "m@slow": "fake-model#ttft_ms=250&itl_ms=25"},
            prices={"m@fast": (1.0, 2.0), "m@slow": (3.0, 6.0)},
        )
        plan = plan_benchmark(catalog, BenchConfig(repeats=3, concurrency=4, max_tokens=50, region="eu"))
        result = asyncio.run(run_benchmark(plan, store))

    assert result.run.status == "done" and result.run.region == "eu" and result.failures == 0
    assert len(result.samples) == 2 * 2 * 3
    for sample in result.samples:
        fast = sample.endpoint == "m@fast"
        ttft, itl = (40.0, 5.0) if fast else (250.0, 25.0)
        assert sample.ok and sample.region == "eu" and sample.prompt in ("short", "long")
        # 1 ms of timer slack below: asyncio may wake the fake's sleep up to its clock resolution early.
        assert ttft - 1 <= sample.ttft_ms <= ttft + TTFT_SLACK_MS  # type: ignore[operator]
        assert itl * 0.8 <= sample.itl_ms <= itl + ITL_SLACK_MS  # type: ignore[operator]
        assert sample.itl_p90_ms is not None and sample.itl_p90_ms >= sample.itl_ms * 0.8  # type: ignore[operator]
        assert sample.output_tokens == 12 and sample.usage_reported
        assert sample.tokens_per_s == pytest.approx(1000 / itl, rel=0.5)
        # Cost: the fake's reported usage × the catalogue's price.
        price_in, price_out = (Decimal(1), Decimal(2)) if fast else (Decimal(3), Decimal(6))
        assert sample.input_tokens is not None and sample.input_tokens > 0
        expected = (price_in * sample.input_tokens + price_out * 12) / Decimal(1_000_000)
        assert sample.cost_usd == expected
    assert result.run.cost_usd == sum(s.cost_usd for s in result.samples if s.cost_usd is not None)
    assert 0 < result.run.cost_usd <= result.run.estimate_usd

    # The figures the objective reads come from those samples.
    figures = StatsLatency(store, region="eu").figures(catalog.endpoints())
    assert figures["m@fast"].source == "benchmark" and not figures["m@fast"].is_prior
    assert 40 <= figures["m@fast"].ttft_ms <= 40 + TTFT_SLACK_MS
    assert 250 <= figures["m@slow"].ttft_ms <= 250 + TTFT_SLACK_MS
    assert 5 * 0.8 <= figures["m@fast"].itl_ms <= 5 + ITL_SLACK_MS
    assert 25 * 0.8 <= figures["m@slow"].itl_ms <= 25 + ITL_SLACK_MS
    assert store.samples(run_id=result.run.id) == sorted(
        store.samples(run_id=result.run.id), key=lambda s: s.created_at
    )
    assert len(store.samples(run_id=result.run.id)) == 12


def test_bad_data_is_recorded_as_such_and_never_poisons_the_figures(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    endpoints = {
        "m@good": "fake-model#ttft_ms=30&itl_ms=2",
        "m@nousage": "fake-model#fault=no_usage&ttft_ms=30&itl_ms=2",
        "m@empty": "fake-model#tokens=0",
        "m@errors": "fake-model#fault=500",
        "m@refuse": "fake-model#fault=refuse",
        "m@garbage": "fake-model#fault=malformed&after=0",
        "m@stall": "fake-model#fault=slow_first_byte&delay_ms=3000",
    }
    with running_fake_provider(FakeConfig(tokens=6)) as fake:
        catalog = fake_catalog(fake.base_url, endpoints)
        timeouts = Timeouts(first_token_s=0.5, total_s=5.0)
        config = BenchConfig(repeats=2, concurrency=14, max_tokens=20, timeouts=timeouts)
        result = asyncio.run(run_benchmark(plan_benchmark(catalog, config), store))

    assert result.run.status == "done"
    by = {name: [s for s in result.samples if s.endpoint == name] for name in endpoints}
    assert all(len(v) == 4 for v in by.values())
    assert all(s.ok and s.usage_reported for s in by["m@good"])
    # No usage: the latency is good, the tokens are counted from the text, the cost is unknown.
    assert all(s.ok and not s.usage_reported and s.cost_usd is None for s in by["m@nousage"])
    assert all(s.output_tokens and s.output_tokens > 0 for s in by["m@nousage"])
    assert all(
        not s.ok and s.error is not None and s.error.startswith("no tokens streamed") for s in by["m@empty"]
    )
    assert all(s.cost_usd is not None for s in by["m@empty"])  # the provider still charged the prompt
    assert all(not s.ok and "HTTP 500" in (s.error or "") for s in by["m@errors"])
    assert all(not s.ok and "connection" in (s.error or "") for s in by["m@refuse"])
    assert all(not s.ok and "not JSON" in (s.error or "") for s in by["m@garbage"])
    assert all(not s.ok and (s.error or "").startswith("timeout: no first token") for s in by["m@stall"])
    assert all(s.ttft_ms is None for name in ("m@empty", "m@errors", "m@refuse", "m@stall") for s in by[name])
    assert result.run.note == f"{result.failures} of 28 request(s) failed" and result.failures == 20

    latency = StatsLatency(store)
    figures = latency.figures(catalog.endpoints())
    for name in ("m@empty", "m@errors", "m@refuse", "m@garbage", "m@stall"):
        assert figures[name].is_prior and figures[name].ttft_ms == 50.0
        assert "4 failed request(s)" in (figures[name].note or "")
    # The good endpoint's figure is the P90 of its own samples: nothing from the failures leaked in.
    assert not figures["m@good"].is_prior
    assert figures["m@good"].ttft_ms == pytest.approx(
        quantile([s.ttft_ms for s in by["m@good"] if s.ttft_ms], 0.9)
    )
    assert not figures["m@nousage"].is_prior


def test_a_plan_over_budget_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    with running_fake_provider() as fake:
        catalog = fake_catalog(fake.base_url, {"m@p": "fake-model"}, prices={"m@p": (1000.0, 1000.0)})
        plan = plan_benchmark(catalog, BenchConfig(repeats=3, budget_usd=Decimal("0.50")))
        assert plan.estimate_usd > Decimal("0.50")
        assert "estimated cost at most $" in plan.describe()
        with pytest.raises(InvalidRequestError, match=r"raise --budget"):
            asyncio.run(run_benchmark(plan, store))
        assert fake.stats.total() == 0
    assert store.runs() == []


def test_the_budget_cap_stops_requests_when_real_usage_runs_over(tmp_path: Path) -> None:
    """The estimate fits, but the provider reports far more input tokens than estimated: once the spend reaches
    the cap, the remaining requests are skipped and recorded as such."""
    store = sqlite_store(tmp_path)
    with running_fake_provider(FakeConfig(tokens=5)) as fake:
        catalog = fake_catalog(fake.base_url, {"m@p": "fake-model"}, prices={"m@p": (100.0, 100.0)})
        plan = plan_benchmark(
            catalog, BenchConfig(repeats=4, concurrency=1, prompts=("short",), max_tokens=5)
        )
        budget = plan.estimate_usd  # exactly the estimate
        # A system message the estimate does not know of makes every request cost several times more.
        heavy = BenchConfig(repeats=4, concurrency=1, prompts=("short",), max_tokens=5, budget_usd=budget)
        heavy_plan = plan_benchmark(catalog, heavy)

        import pointsman.stats.bench as bench

        original = bench.prompt_messages
        padding = {"role": "system", "content": "pad " * 2000}
        bench.prompt_messages = lambda kind: [padding, *original(kind)]  # type: ignore[assignment]
        try:
            result = asyncio.run(run_benchmark(heavy_plan, store))
        finally:
            bench.prompt_messages = original  # type: ignore[assignment]
    sent = [s for s in result.samples if s.error != BUDGET_SKIP]
    skipped = [s for s in result.samples if s.error == BUDGET_SKIP]
    assert len(sent) == 1 and len(skipped) == 3 and fake.stats.total() == 1
    assert sent[0].ok and sent[0].cost_usd is not None and sent[0].cost_usd > budget / 4
    assert result.run.cost_usd == sent[0].cost_usd


def test_plan_errors_tell_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = fake_catalog(
        "http://127.0.0.1:9/v1",
        {"m@open": "fake-model", "m@keyed": "fake-model"},
        extra_providers={"keyed": {"api_key_env": "PM_TEST_BENCH_KEY"}},
    )
    monkeypatch.delenv("PM_TEST_BENCH_KEY", raising=False)
    with pytest.raises(UnknownNameError, match="did you mean"):
        plan_benchmark(catalog, BenchConfig(endpoints=["m@opne"]))
    with pytest.raises(MissingKeyError, match="PM_TEST_BENCH_KEY"):
        plan_benchmark(catalog, BenchConfig(endpoints=["m@keyed"]))
    with pytest.raises(InvalidRequestError, match="--endpoints"):
        plan_benchmark(catalog, BenchConfig(endpoints=[]))
    with pytest.raises(InvalidRequestError, match="unknown benchmark prompt"):
        BenchConfig(prompts=("medium",))
    with pytest.raises(InvalidRequestError, match="at least 1"):
        BenchConfig(repeats=0)
    with pytest.raises(InvalidRequestError, match="--budget"):
        BenchConfig(budget_usd=Decimal(-1))
    # By default, endpoints without their key are skipped and said so.
    plan = plan_benchmark(catalog, BenchConfig())
    assert [e.name for e in plan.endpoints] == ["m@open"]
    assert plan.skipped == {"m@keyed": "no API key: set PM_TEST_BENCH_KEY"}
    only_keyed = fake_catalog(
        "http://127.0.0.1:9/v1",
        {"m@keyed": "fake-model"},
        extra_providers={"keyed": {"api_key_env": "PM_TEST_BENCH_KEY"}},
    )
    with pytest.raises(InvalidRequestError, match="set PM_TEST_BENCH_KEY"):
        asyncio.run(run_benchmark(plan_benchmark(only_keyed, BenchConfig()), sqlite_store(tmp_path)))


def test_concurrency_limit_is_respected(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    with running_fake_provider(FakeConfig(tokens=2, ttft_s=0.15)) as fake:
        catalog = fake_catalog(fake.base_url, {"m@a": "fake-model", "m@b": "fake-model"})
        config = BenchConfig(repeats=2, concurrency=2, max_tokens=5)
        result = asyncio.run(run_benchmark(plan_benchmark(catalog, config), store))
    # 8 requests of at least 150 ms, two at a time: at least four rounds.
    assert result.run.finished_at is not None
    elapsed = (result.run.finished_at - result.run.started_at).total_seconds()
    assert elapsed >= 4 * 0.15
    assert all(s.ok for s in result.samples)
