"""The registered ``neural`` scorer, adaptation (fit, new LLMs) and the predict/train commands."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _scorer_tiny import synthetic_records, tiny_encoder, tiny_encoder_dir
from typer.testing import CliRunner

from pointsman.cli.app import build_app
from pointsman.data import RoutingRecord
from pointsman.errors import ConfigError, DataError, ScorerError, UnknownNameError
from pointsman.scorer.base import SCORERS, load_registry
from pointsman.scorer.neural import NeuralScorer
from pointsman.scorer.train import TrainConfig, train

CODE = "Write a python function about river castle"
POEM = "Write a poem about winter garden"


def tiny_train_config(**kw: object) -> dict[str, object]:
    base: dict[str, object] = dict(
        encoder=tiny_encoder_dir(),
        max_tokens=32,
        d_model=32,
        n_layer=1,
        n_head=2,
        dropout=0.0,
        default_source="synthetic",
        max_per_task={},
        batch_size=16,
        lr=1e-2,
        warmup_steps=5,
        max_steps=100,
        eval_interval=20,
        patience=3,
        val_fraction=0.2,
        threads=1,
    )
    base.update(kw)
    return base


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("neural") / "run"
    train(
        synthetic_records(120),
        TrainConfig(**tiny_train_config()),
        out,
        encoder=tiny_encoder(),
        show_progress=False,  # type: ignore[arg-type]
    )
    return out / "best"


def test_registered_under_its_name() -> None:
    assert load_registry()["neural"] is NeuralScorer
    assert SCORERS["neural"].name == "neural"


def test_predict_shapes_subsets_and_errors(checkpoint: Path) -> None:
    scorer = NeuralScorer.load(checkpoint, encoder=tiny_encoder())
    assert scorer.models == ["avg", "coder", "poet"]
    both = scorer.predict([CODE, POEM], ["poet", "coder"])
    assert both.models == ["poet", "coder"] and both.quality.shape == (2, 2)
    alone = scorer.predict([CODE, POEM], ["coder"])
    np.testing.assert_allclose(alone.quality[:, 0], both.quality[:, 1], atol=1e-5)
    with pytest.raises(UnknownNameError, match="known: avg, coder, poet"):
        scorer.predict([CODE], ["coder", "gpt-17"])
    empty = scorer.predict([], ["coder"])
    assert empty.quality.shape == (0, 1)


def test_empty_and_long_prompts_are_scored(checkpoint: Path) -> None:
    scorer = NeuralScorer.load(checkpoint, encoder=tiny_encoder())
    details = scorer.predict_detailed(["", "word " * 500, POEM], ["coder"])
    assert details.truncated == [False, True, False]
    assert np.isfinite(details.prediction.quality).all()


def test_unknown_source_is_an_error(checkpoint: Path) -> None:
    scorer = NeuralScorer.load(checkpoint, encoder=tiny_encoder())
    with pytest.raises(ScorerError, match="no head for source"):
        NeuralScorer(scorer.model, source="nope")


def shifted(records: list[RoutingRecord], source: str, newbie_like: str | None = None) -> list[RoutingRecord]:
    """The same prompts on another scale (everything +0.05), optionally with a new LLM copying another."""
    out = []
    for r in records:
        scores = {m: min(1.0, s + 0.05) for m, s in r.scores.items()}
        if newbie_like:
            scores = {"newbie": r.scores[newbie_like]}
        out.append(RoutingRecord(r.id, source, r.task, r.split, r.prompt, r.label, scores))
    return out


def test_fit_adapts_a_base_to_a_new_source_and_new_llm(checkpoint: Path) -> None:
    records = shifted(synthetic_records(60, seed=3), "arena")
    for r in records:
        r.scores["newbie"] = r.scores["coder"]
    fitted = NeuralScorer.fit(
        records, seed=0, target_source="arena", base=checkpoint, encoder=tiny_encoder(), steps=150
    )
    assert fitted.source == "arena" and "newbie" in fitted.models
    pred = fitted.predict([CODE, POEM], ["newbie", "coder", "poet"])
    assert pred.quality[0, 0] > pred.quality[1, 0] + 0.2, "the new LLM's latent did not learn its strength"
    assert pred.quality[0, 1] > pred.quality[0, 2]
    with pytest.raises(ScorerError, match="unknown option"):
        NeuralScorer.fit(records, base=checkpoint, encoder=tiny_encoder(), stepz=3)


def test_fit_offsets_only_keeps_the_heads_read_out(checkpoint: Path) -> None:
    """head="offsets" (the default) moves the per-LLM offsets and the head's bias, never the prompt-dependent read-out;
    the gap term and the head anchor are accepted options; an unknown head mode is an error."""
    records = shifted(synthetic_records(60, seed=4), "arena")
    for r in records:  # the poet gets much better on this source, whatever the prompt
        r.scores["poet"] = min(1.0, r.scores["poet"] + 0.4)
    base = NeuralScorer.load(checkpoint, encoder=tiny_encoder())
    kw: dict[str, object] = dict(seed=0, target_source="arena", base=checkpoint, encoder=tiny_encoder())
    fitted = NeuralScorer.fit(records, head="offsets", pair_loss=1.0, steps=150, **kw)  # type: ignore[arg-type]
    head = fitted.model.head_index("arena")
    start = base.model.head_index(base.model.config.default_source)
    assert fitted.model.head_w[head].equal(base.model.head_w[start]), "the head's read-out moved"
    poet = fitted.model.config.models.index("poet")
    assert fitted.model.prior[head, poet] > base.model.prior[start, poet] + 0.5, "the offsets did not adapt"
    row = NeuralScorer.fit(records, head="row", head_anchor=1.0, steps=50, **kw)  # type: ignore[arg-type]
    assert not row.model.head_w[head].equal(base.model.head_w[start])
    with pytest.raises(DataError, match="unknown head adaptation"):
        NeuralScorer.fit(records, head="everything", **kw)  # type: ignore[arg-type]


def test_cli_predict_writes_quality_and_uncertainty(checkpoint: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        json.dumps({"id": "a", "prompt": CODE}) + "\n\n" + json.dumps({"id": 7, "prompt": "x " * 400}) + "\n"
    )
    out = tmp_path / "preds.jsonl"
    args = ["predict", "--input", str(prompts), "--models", "coder,poet", "--output", str(out)]
    result = CliRunner().invoke(build_app(), [*args, "--checkpoint", str(checkpoint)])
    assert result.exit_code == 0, result.output
    assert "longer than 32 tokens" in result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["id"] for line in lines] == ["a", "7"]
    assert set(lines[0]["quality"]) == {"coder", "poet"}
    assert all(0 < v < 1 for v in lines[0]["quality"].values())
    assert all(v > 0 for v in lines[0]["uncertainty"].values())
    bad = CliRunner().invoke(
        build_app(), [*args[:4], "coder,gpt-17", *args[5:], "--checkpoint", str(checkpoint)]
    )
    assert isinstance(bad.exception, UnknownNameError)
    prompts.write_text('{"id": "a"}\n')
    missing = CliRunner().invoke(build_app(), [*args, "--checkpoint", str(checkpoint)])
    assert isinstance(missing.exception, DataError) and "line 1" in str(missing.exception)


def test_cli_train_and_adapt(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r.__dict__) for r in synthetic_records(60)))
    config = tmp_path / "c.json"
    config.write_text(json.dumps(tiny_train_config(max_steps=20, eval_interval=10)))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        build_app(), ["train", "--data", str(data), "--config", str(config), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "best" / "config.json").exists()
    new = tmp_path / "new.jsonl"
    new.write_text(
        "\n".join(json.dumps(r.__dict__) for r in shifted(synthetic_records(50, seed=5), "synthetic", "poet"))
    )
    adapted = tmp_path / "adapted"
    result = CliRunner().invoke(
        build_app(),
        [
            "train",
            "--data",
            str(new),
            "--adapt-from",
            str(out / "best"),
            "--latents-only",
            "--out",
            str(adapted),
        ],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((adapted / "config.json").read_text())
    assert "newbie" in meta["model"]["models"] and meta["meta"]["new_models"] == ["newbie"]
    again = CliRunner().invoke(
        build_app(),
        [
            "train",
            "--data",
            str(new),
            "--adapt-from",
            str(adapted),
            "--latents-only",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert isinstance(again.exception, DataError) and "already known" in str(again.exception)
    config.write_text('{"learning_rate": 1}')
    bad = CliRunner().invoke(build_app(), ["train", "--data", str(data), "--config", str(config)])
    assert isinstance(bad.exception, ConfigError) and "learning_rate" in str(bad.exception)


def test_models_without_a_latent_fall_back(checkpoint: Path) -> None:
    from pointsman.scorer.prior import PriorScorer

    prior = PriorScorer({"gpt-x": (0.7, 0.1)})
    scorer = NeuralScorer.load(checkpoint, encoder=tiny_encoder(), fallback=prior)
    assert "gpt-x" in scorer.models
    pred = scorer.predict([CODE, POEM], ["gpt-x", "coder"])
    np.testing.assert_allclose(pred.quality[:, 0], [0.7, 0.7], atol=1e-6)
    alone = NeuralScorer.load(checkpoint, encoder=tiny_encoder()).predict([CODE, POEM], ["coder"])
    np.testing.assert_allclose(pred.quality[:, 1], alone.quality[:, 0], atol=1e-6)
    assert pred.uncertainty is not None and pred.uncertainty[0, 0] == pytest.approx(0.1)
    only_prior = scorer.predict([CODE], ["gpt-x"])
    assert only_prior.quality[0, 0] == pytest.approx(0.7)
