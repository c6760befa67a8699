"""``pointsman train --quick`` end to end on real public data: it trains, writes a checkpoint that carries the
quick recipe, and that checkpoint loads and scores. How long the recipe takes is measured, not tested (see
docs/scorer.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pointsman.cli.app import build_app
from pointsman.data import shared_data_dir

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def test_quick_recipe_trains_a_loadable_checkpoint(tmp_path: Path) -> None:
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared/data is not present (a fresh clone); the quick recipe trains on it")
    from pointsman.scorer.neural import NeuralScorer

    files = ["arena-bench-v1-dev.jsonl.gz", "alpacaeval2.jsonl.gz", "routerbench.jsonl.gz"]
    args = ["train", "--quick", "--out", str(tmp_path / "run")]
    for name in files:
        args += ["--data", str(data / "routing" / name)]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    best = tmp_path / "run" / "best"
    config = json.loads((best / "config.json").read_text())["model"]
    assert (config["max_tokens"], config["d_model"], config["n_layer"]) == (48, 64, 1), "not the quick recipe"
    assert config["default_source"] == "arena-bench-v1"
    scorer = NeuralScorer.load(best)
    pred = scorer.predict(
        ["Prove that there are infinitely many primes.", "hi"], ["gpt-4-1106-preview", "claude-2"]
    )
    assert pred.quality.shape == (2, 2) and ((pred.quality > 0) & (pred.quality < 1)).all()
    assert pred.uncertainty is not None and (pred.uncertainty > 0).all()
