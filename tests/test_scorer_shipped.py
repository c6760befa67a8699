"""The checkpoints shipped in the package load with the real MiniLM and score the arena candidates."""

from __future__ import annotations

import numpy as np
import pytest

from pointsman.scorer.checkpoint import load_model
from pointsman.scorer.neural import NeuralScorer, packaged_checkpoint

CANDIDATES = [
    "gpt-4-1106-preview",
    "gpt-4-0314",
    "gpt-3.5-turbo-0613",
    "gpt-3.5-turbo-1106",
    "claude-1",
    "claude-2",
    "claude-2.1",
    "claude-instant-1",
    "llama-2-70b-chat",
    "mixtral-8x7b-instruct-v0.1",
    "mistral-7b-instruct-v0.1",
]


def test_shipped_checkpoints_are_small_and_complete() -> None:
    for name in ("base", "default"):
        directory = packaged_checkpoint(name)
        size = sum(p.stat().st_size for p in directory.iterdir())
        assert size < 25 * 2**20, f"{directory} is {size / 2**20:.1f} MiB; the package budget is 25 MiB"
        _, meta = load_model(directory)
        assert "step" in meta
    base, _ = load_model(packaged_checkpoint("base"))
    assert "arena-bench-v1" not in base.config.sources, "the base must not have seen arena-bench-v1-dev"
    default, meta = load_model(packaged_checkpoint("default"))
    assert default.config.default_source == "arena-bench-v1" and meta["adapted_on"] == "arena-bench-v1"
    assert set(CANDIDATES) <= set(default.config.models)


@pytest.mark.slow
def test_default_scores_the_arena_candidates_with_minilm() -> None:
    scorer = NeuralScorer.load()
    prompts = ["Prove that there are infinitely many primes.", "hi", ""]
    pred = scorer.predict(prompts, CANDIDATES)
    assert pred.quality.shape == (3, len(CANDIDATES))
    assert ((pred.quality > 0) & (pred.quality < 1)).all()
    assert pred.uncertainty is not None and (pred.uncertainty > 0).all()
    mean = dict(zip(CANDIDATES, pred.quality.mean(axis=0), strict=True))
    assert mean["gpt-4-1106-preview"] > mean["mistral-7b-instruct-v0.1"], "the prior ordering is lost"
    assert not np.allclose(pred.quality[0], pred.quality[1]), "predictions ignore the prompt"
