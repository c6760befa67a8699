"""Passive telemetry from real gateway requests (the real openai client, a fake provider on loopback), the
gateway ranking on measured figures, and the benchmark schedule inside the gateway's lifespan."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _stats_helpers import sqlite_store, two_provider_catalog
from openai import OpenAI

from pointsman.gateway.app import create_app
from pointsman.gateway.billing import OpenAccessBilling
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import fake_catalog, running_gateway
from pointsman.providers.fake import FakeConfig, running_fake_provider
from pointsman.settings import Settings
from pointsman.stats.settings import StatsSettings
from pointsman.stats.store import StatsStore

GATEWAY = GatewaySettings(retries=0, backoff_base_s=0.0, breaker_failures=100)
FAST_FLUSH = StatsSettings(telemetry_flush_s=0.05, refresh_s=0.0)


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def _stream(client: OpenAI, model: str) -> str:
    parts = []
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
    return "".join(parts)


def test_routed_streams_record_ttft_and_itl(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with running_fake_provider(FakeConfig(tokens=8)) as fake:
        catalog = fake_catalog(
            fake.base_url,
            {
                "m@p": "fake-model#ttft_ms=80&itl_ms=10",
                "m@broken": "fake-model#fault=close_early&after=3",
                "m@empty": "fake-model#tokens=0",
            },
        )
        app = create_app(
            settings, catalog=catalog, billing=OpenAccessBilling(), gateway_settings=GATEWAY, stats=FAST_FLUSH
        )
        with running_gateway(app) as base_url:
            client = OpenAI(base_url=base_url, api_key="x", max_retries=0)
            for _ in range(3):
                assert _stream(client, "m@p")
            # Non-streaming replies have no TTFT: not sampled.
            client.chat.completions.create(model="m@p", messages=[{"role": "user", "content": "hi"}])
            # A stream that breaks after its first tokens: a failed traffic sample.
            with pytest.raises(Exception, match=r"truncated|broke"):
                _stream(client, "m@broken")
            assert _stream(client, "m@empty") == ""  # a stream with no content: a failed sample
            store = StatsStore.open(settings, migrate=False)
            _wait_for(lambda: len(store.samples(source="traffic")) >= 5)
    samples = store.samples(source="traffic")
    assert len(samples) == 5  # written again on shutdown: nothing lost, nothing doubled
    good = [s for s in samples if s.endpoint == "m@p"]
    assert len(good) == 3
    for sample in good:
        assert sample.ok and sample.region == "default" and sample.run_id is None
        # asyncio may wake a sleeper up to its clock resolution early (a run measured 79.99999999998 ms),
        # so the floor allows a millisecond of timer slack.
        assert 80 - 1 <= sample.ttft_ms <= 80 + 150  # type: ignore[operator]
        assert 8 <= sample.itl_ms <= 10 + 15  # type: ignore[operator]
        assert sample.usage_reported and sample.output_tokens == 8
    (broken,) = [s for s in samples if s.endpoint == "m@broken"]
    assert not broken.ok and broken.error == "upstream_connection_error" and broken.ttft_ms is None
    (empty,) = [s for s in samples if s.endpoint == "m@empty"]
    assert not empty.ok and (empty.error or "").startswith("no tokens streamed") and empty.ttft_ms is None
    store.close()


def test_gateway_ranks_on_traffic_figures_and_explains_priors(tmp_path: Path) -> None:
    """Traffic alone moves the router: alpha's streams are slow, so a router string that weighs TTFT picks
    beta, and /v1/route explains which figures were measured."""
    settings = Settings(data_dir=tmp_path)
    router = "router@q:1|t:0.001|models:m"
    with (
        running_fake_provider(FakeConfig(ttft_s=0.4, tokens=3)) as alpha,
        running_fake_provider(FakeConfig(ttft_s=0.05, tokens=3)) as beta,
    ):
        catalog = two_provider_catalog({"alpha": alpha.base_url, "beta": beta.base_url})
        # As in production: figures reloaded by a background task (here every 0.1 s), never by a request.
        stats = StatsSettings(telemetry_flush_s=0.05, refresh_s=0.1)
        app = create_app(
            settings, catalog=catalog, billing=OpenAccessBilling(), gateway_settings=GATEWAY, stats=stats
        )
        with running_gateway(app) as base_url:
            import httpx

            client = OpenAI(base_url=base_url, api_key="x", max_retries=0)
            first = httpx.post(
                f"{base_url}/route", json={"model": router, "messages": [{"role": "user", "content": "hi"}]}
            )
            assert first.status_code == 200, first.text
            assert "catalogue prior" in first.text  # both priors (100 ms): flagged
            _stream(client, "m@alpha")
            store = StatsStore.open(settings, migrate=False)
            _wait_for(lambda: len(store.samples(source="traffic")) >= 1)
            time.sleep(0.3)  # the next background reload
            # alpha measured at 400 ms against beta's 100 ms prior: beta wins.
            routed = client.chat.completions.with_raw_response.create(
                model=router, messages=[{"role": "user", "content": "hi"}], stream=True
            )
            assert routed.headers["x-pointsman-endpoint"] == "m@beta"
            for _ in routed.parse():
                pass
            store.close()


def test_scheduled_benchmarks_run_inside_the_gateway(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    stats = StatsSettings(
        schedule=True,
        bench_interval_s=0.4,
        bench_repeats=1,
        bench_max_tokens=3,
        region="eu-west",
        refresh_s=0.0,
    )
    with running_fake_provider(FakeConfig(tokens=3)) as fake:
        catalog = fake_catalog(fake.base_url, {"m@p": "fake-model"})
        app = create_app(
            settings, catalog=catalog, billing=OpenAccessBilling(), gateway_settings=GATEWAY, stats=stats
        )
        with running_gateway(app):
            store = StatsStore.open(settings, migrate=False)
            _wait_for(lambda: len([r for r in store.runs() if r.status == "done"]) >= 2)
    runs = store.runs()
    assert all(r.region == "eu-west" for r in runs)
    assert runs[0].started_at - runs[-1].started_at >= __import__("datetime").timedelta(seconds=0.35)
    assert all(s.source == "benchmark" and s.ok for s in store.samples())
    store.close()


def test_stats_off_by_default_for_embedded_apps(tmp_path: Path) -> None:
    with running_fake_provider(FakeConfig(tokens=3)) as fake:
        app = create_app(
            Settings(data_dir=tmp_path),
            catalog=fake_catalog(fake.base_url, {"m@p": "fake-model"}),
            billing=OpenAccessBilling(),
            gateway_settings=GATEWAY,
        )
        with running_gateway(app) as base_url:
            _stream(OpenAI(base_url=base_url, api_key="x", max_retries=0), "m@p")
    assert not (tmp_path / "pointsman.db").exists()
    assert sqlite_store(tmp_path, "other.db").samples() == []
