"""Shared pieces of the stats tests: a migrated SQLite store and fake providers with known latency."""

from __future__ import annotations

from pathlib import Path

from pointsman.db import create_db_engine, upgrade
from pointsman.stats.store import StatsStore


def sqlite_store(tmp_path: Path, name: str = "stats.db") -> StatsStore:
    engine = create_db_engine(f"sqlite:///{tmp_path / name}")
    upgrade(engine)
    return StatsStore(engine)


def two_provider_catalog(urls: dict[str, str], *, quality: float = 0.8):  # type: ignore[no-untyped-def]
    """One model ``m`` (with a quality prior, so the prior scorer can rank it) served by each provider in
    ``urls`` (provider → fake provider base URL), at the same price, with priors of 100 ms TTFT and 10 ms ITL."""
    from datetime import date

    from pointsman.catalog import parse_catalog_dict

    providers = {
        name: {"base_url": url, "api_style": "openai", "ttft_prior_ms": 100.0, "itl_prior_ms": 10.0}
        for name, url in urls.items()
    }
    endpoints = {
        f"m@{name}": {
            "upstream_model": "fake-model",
            "input_usd_per_mtok": 1.0,
            "output_usd_per_mtok": 2.0,
            "price_as_of": date(2026, 1, 1),
        }
        for name in urls
    }
    models = {"m": {"context_window": 32_768, "quality_prior": quality}}
    return parse_catalog_dict({"models": models, "providers": providers, "endpoints": endpoints})
