"""The quality-prior method (scripts/make_quality_prior.py) on small synthetic data with known answers, and
objective invariants on random candidate sets."""

from __future__ import annotations

import gzip
import importlib.util
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pointsman.catalog import Endpoint
from pointsman.errors import NoCandidatesError
from pointsman.latency import LatencyFigure
from pointsman.objective import Candidate, metric_value, rank
from pointsman.router_string import RouterStep, Threshold, Weights


def load_script() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "scripts" / "make_quality_prior.py"
    spec = importlib.util.spec_from_file_location("make_quality_prior", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_source(directory: Path, name: str, source: str, rows: list[dict[str, float]]) -> None:
    with gzip.open(directory / f"{name}.jsonl.gz", "wt", encoding="utf-8") as handle:
        for i, scores in enumerate(rows):
            record = {
                "id": f"{source}/{i}",
                "source": source,
                "split": "train",
                "prompt": f"p{i}",
                "scores": scores,
            }
            handle.write(json.dumps(record) + "\n")


@pytest.fixture(scope="module")
def script() -> ModuleType:
    return load_script()


def test_linear_calibration_recovers_a_known_map(tmp_path: Path, script: ModuleType) -> None:
    routing = tmp_path / "routing"
    routing.mkdir()
    # Arena scale: a=0.8, b=0.6, c=0.4 (two prompts each, so the std is known).
    write_source(
        routing, "arena", script.TARGET, [{"a": 0.7, "b": 0.6, "c": 0.3}, {"a": 0.9, "b": 0.6, "c": 0.5}]
    )
    # Another source on the scale x = (arena + 0.2) / 2, with a new model d at x = 0.55 → arena 0.9.
    write_source(routing, "other", "other", [{"a": 0.5, "b": 0.4, "c": 0.3, "d": 0.55}])
    # A third source sharing a single calibrated model (d) and one arena model (a): calibrated in round 2.
    write_source(routing, "third", "third", [{"d": 0.8, "a": 0.7, "e": 0.5}])
    prior = script.build(tmp_path)
    models = prior["models"]
    assert models["a"]["quality"] == pytest.approx(0.8) and models["a"]["method"] == "direct"
    assert models["a"]["uncertainty"] == pytest.approx(0.1)
    assert models["d"]["quality"] == pytest.approx(0.9, abs=1e-4)
    assert models["d"]["method"] == "linear-calibration" and models["d"]["sources"] == ["other"]
    other = prior["calibrations"]["other"]
    assert other["slope"] == pytest.approx(2.0) and other["intercept"] == pytest.approx(-0.2)
    # third: x=0.8 → 0.9 and x=0.7 → 0.8, so y = x + 0.1 and e = 0.6.
    assert prior["calibrations"]["third"]["round"] == 2
    assert models["e"]["quality"] == pytest.approx(0.6, abs=1e-4)


def test_fit_line_keeps_the_slope_positive(script: ModuleType) -> None:
    a, b, _ = script.fit_line([0.1, 0.9], [0.8, 0.2])
    assert a == 1.0 and b == pytest.approx(0.0)


def test_source_with_no_overlap_uses_a_proxy_or_is_skipped(tmp_path: Path, script: ModuleType) -> None:
    routing = tmp_path / "routing"
    routing.mkdir()
    write_source(routing, "arena", script.TARGET, [{"mistral-7b-instruct-v0.1": 0.4, "x": 0.8}])
    write_source(routing, "iso", "iso", [{"mistral-7b-instruct-v0.3": 0.5, "y": 0.7}])
    write_source(routing, "lonely", "lonely", [{"z": 0.5}])
    models = script.build(tmp_path)["models"]
    assert models["y"]["quality"] == pytest.approx(0.6) and models["y"]["method"] == "proxy-shift"
    assert "z" not in models


# ---------------------------------------------------------------------------------------------------------
# Objective invariants


def make(name: str, quality: float, price: float, ttft: float, itl: float, context: int) -> Candidate:
    model, provider = name.split("@")
    endpoint = Endpoint(
        name=name,
        model=model,
        provider=provider,
        upstream_model=model,
        input_usd_per_mtok=Decimal(str(price)),
        output_usd_per_mtok=Decimal(str(price)),
        price_as_of=date(2024, 1, 1),
        price_verified=True,
        context_window=context,
        api_style="openai",
        base_url="http://127.0.0.1:1/v1",
        api_key_env=None,
        ttft_prior_ms=1.0,
        itl_prior_ms=1.0,
    )
    return Candidate(endpoint, quality, 0.1, LatencyFigure(ttft_ms=ttft, itl_ms=itl, source="benchmark"))


candidate_rows = st.lists(
    st.tuples(
        st.floats(0, 1),
        st.floats(0, 50),
        st.floats(1, 2000),
        st.floats(0.5, 100),
        st.sampled_from([4096, 8192, 32768]),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=80, deadline=None)
@given(
    rows=candidate_rows,
    weights=st.tuples(st.floats(0, 2), st.floats(0, 0.1), st.floats(0, 0.001), st.floats(0, 0.05)),
    max_cost=st.floats(0, 60),
    prompt_tokens=st.integers(0, 20000),
)
def test_rank_is_sorted_respects_filters_and_keeps_every_survivor(
    rows: list[tuple[float, float, float, float, int]],
    weights: tuple[float, float, float, float],
    max_cost: float,
    prompt_tokens: int,
) -> None:
    pool = [make(f"m{i}@p", *row) for i, row in enumerate(rows)]
    q, c, t, i = weights
    step = RouterStep(
        weights=Weights(quality=q, cost=c, ttft=t, itl=i),
        thresholds=(Threshold(metric="cost", upper=max_cost),),
    )
    survivors = [
        x
        for x in pool
        if x.endpoint.context_window >= prompt_tokens + 1 and metric_value(x, "cost") < max_cost
    ]
    if not survivors:
        with pytest.raises(NoCandidatesError):
            rank(pool, step, default_weights=Weights(quality=1.0), prompt_tokens=prompt_tokens)
        return
    ranked = rank(pool, step, default_weights=Weights(quality=1.0), prompt_tokens=prompt_tokens)
    assert {r.endpoint for r in ranked} == {x.endpoint.name for x in survivors}
    scores = [r.score for r in ranked]
    assert scores == sorted(scores, reverse=True)
    for r in ranked:
        expected = q * r.quality - c * r.cost - t * r.ttft_ms - i * r.itl_ms
        assert r.score == pytest.approx(expected, abs=1e-9)
