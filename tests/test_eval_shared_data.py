"""The harness on the public routing data in ../shared/data (skipped in a clone without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pointsman.data import load_routing, shared_data_dir
from pointsman.evaluation.costs import load_prices
from pointsman.evaluation.harness import EvalOptions, evaluate_dataset

pytestmark = pytest.mark.shared_data

EXTRA_PRICES = Path(__file__).resolve().parent.parent / "benchmarks" / "eval_prices_extra.json"


def data_dir() -> Path:
    found = shared_data_dir()
    if found is None:
        pytest.skip("no ../shared/data (set POINTSMAN_SHARED_DATA to the public routing data to run this)")
    return found


@pytest.mark.slow
def test_every_public_file_evaluates_with_the_shipped_and_extra_prices() -> None:
    root = data_dir()
    prices = load_prices([root / "prices.json", EXTRA_PRICES])
    files = sorted((root / "routing").glob("*.jsonl.gz"))
    assert files, "the shared data has no routing files"
    for path in files:
        result = evaluate_dataset(
            load_routing(path),
            name=path.name,
            path=str(path),
            prices=prices,
            prices_origin="prices.json + eval_prices_extra.json",
            options=EvalOptions(routers=["best-single"], max_prompts=300, bootstrap=0),
        )
        assert len(result.candidates) >= 2, path.name
        oracle = result.references["oracle"]
        assert result.routers["best-single"].aiq <= oracle.aiq + 1e-9, path.name
        assert result.references["singles-hull"].aiq <= oracle.aiq + 1e-9, path.name
        if path.name.startswith(("routerbench", "llmrouter")):
            assert result.split.kind == "source test split", path.name


def test_random_router_apgr_on_arena_prompts_is_half_give_or_take_noise() -> None:
    root = data_dir()
    path = root / "routing" / "arena-bench-v1-dev.jsonl.gz"
    records = load_routing(path)
    values = []
    for seed in range(8):
        result = evaluate_dataset(
            records,
            name="arena",
            path=str(path),
            prices=load_prices([root / "prices.json"]),
            prices_origin="prices.json",
            options=EvalOptions(routers=["random"], seed=seed, bootstrap=100, n_lambdas=8),
        )
        r = result.routers["random"]
        assert result.pair == ("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1")
        assert result.split.kind == "k-fold"
        assert r.apgr is not None and r.apgr_ci is not None
        assert r.apgr_ci[0] < 0.5 < r.apgr_ci[1]  # a random router is indistinguishable from random mixing
        values.append(r.apgr)
    assert 0.4 < np.mean(values) < 0.6
