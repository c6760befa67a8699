"""The phrasing quirk (the Gemma-7B one): a model that answers "highest"/"maximum" questions right but fails
"largest" ones. After training on a small synthetic set, the scorer must separate *unseen* prompts of the two
phrasings for that model (predicted gap >= 0.5) while the other models are unaffected. Uses the real MiniLM."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from pointsman.data import RoutingRecord
from pointsman.scorer.neural import NeuralScorer
from pointsman.scorer.train import TrainConfig, train

TEMPLATES = [
    "Which number is the {w} in this list: {nums}?",
    "What is the {w} value among {nums}?",
    "Find the {w} of these numbers: {nums}.",
    "Tell me the {w} number here: {nums}",
]
UNSEEN_TEMPLATES = ["Of {nums}, which one is the {w}?", "Please give the {w} number from {nums}."]


def numbers(rng: random.Random) -> str:
    return ", ".join(str(rng.randint(1, 999)) for _ in range(rng.randint(3, 7)))


def records(n: int, seed: int) -> list[RoutingRecord]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        word = ["highest", "maximum", "largest"][i % 3]
        prompt = rng.choice(TEMPLATES).format(w=word, nums=numbers(rng))
        quirky = 0.0 if word == "largest" else 1.0
        scores = {"gemma-7b-it": quirky, "steady": 0.9, "coin": 0.5}
        out.append(RoutingRecord(f"q/{i}", "quirk", word, "train", prompt, "correct", scores))
    return out


@pytest.mark.slow
def test_scorer_learns_the_largest_vs_highest_quirk(tmp_path: Path) -> None:
    cfg = TrainConfig(
        max_tokens=48,
        d_model=32,
        n_layer=1,
        n_head=2,
        dropout=0.0,
        default_source="quirk",
        max_per_task={},
        batch_size=32,
        lr=3e-3,
        warmup_steps=10,
        max_steps=600,
        eval_interval=100,
        patience=3,
        threads=1,
    )
    train(records(240, seed=0), cfg, tmp_path / "run", show_progress=False)
    scorer = NeuralScorer.load(tmp_path / "run" / "best")
    rng = random.Random(99)
    unseen = {
        w: [t.format(w=w, nums=numbers(rng)) for t in UNSEEN_TEMPLATES + TEMPLATES for _ in range(2)]
        for w in ("highest", "maximum", "largest")
    }
    models = ["gemma-7b-it", "steady", "coin"]
    mean = {w: scorer.predict(ps, models).quality.mean(axis=0) for w, ps in unseen.items()}
    for good in ("highest", "maximum"):
        gap = mean[good][0] - mean["largest"][0]
        assert gap >= 0.5, f"gemma's predicted gap {good} vs largest is {gap:.2f}"
        for j in (1, 2):
            other = abs(mean[good][j] - mean["largest"][j])
            assert other < 0.15, f"{models[j]} moved by {other:.3f} between phrasings"
