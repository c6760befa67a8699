"""The training loop, checkpoints, resume and the train/predict commands, on a tiny random encoder."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from _scorer_tiny import synthetic_records, tiny_encoder, tiny_encoder_dir

from pointsman.errors import ConfigError, DataError, ScorerError
from pointsman.scorer.checkpoint import load_model, load_train_state, save_model
from pointsman.scorer.neural import NeuralScorer
from pointsman.scorer.train import TrainConfig, get_lr, train


def tiny_cfg(**kw: object) -> TrainConfig:
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
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_lr_schedule_warms_up_then_decays() -> None:
    cfg = tiny_cfg(lr=1.0, min_lr=0.1, warmup_steps=10, max_steps=110)
    lrs = [get_lr(s, cfg) for s in range(111)]
    assert lrs[0] < lrs[5] < lrs[9] <= 1.0
    assert lrs[10] == pytest.approx(1.0, abs=1e-3)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lrs[110] == pytest.approx(0.1)


def test_training_learns_and_writes_checkpoints(tmp_path: Path) -> None:
    records = synthetic_records(120)
    result = train(records, tiny_cfg(), tmp_path / "run", encoder=tiny_encoder(), show_progress=False)
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()
    config = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert config["model"]["models"] == ["avg", "coder", "poet"]
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"] + 1e-6
    scorer = NeuralScorer.load(tmp_path / "run" / "best", encoder=tiny_encoder())
    pred = scorer.predict(
        ["Write a python function about river castle", "Write a poem about winter"], ["coder", "poet"]
    )
    assert pred.quality[0, 0] > pred.quality[0, 1], "coder should win the code prompt"
    assert pred.quality[1, 1] > pred.quality[1, 0], "poet should win the poem prompt"
    assert pred.uncertainty is not None and (pred.uncertainty > 0).all()


def test_resume_continues_from_last_checkpoint(tmp_path: Path) -> None:
    records = synthetic_records(80)
    out = tmp_path / "run"
    train(records, tiny_cfg(max_steps=20, eval_interval=10), out, encoder=tiny_encoder(), show_progress=False)
    state = load_train_state(out / "last")
    assert state is not None and state["step"] == 20
    before, _ = load_model(out / "last")
    result = train(
        records,
        tiny_cfg(max_steps=40, eval_interval=10),
        out,
        encoder=tiny_encoder(),
        resume=True,
        show_progress=False,
    )
    assert result.steps == 40
    assert len(result.history) == 4  # two evaluations before the crash, two after
    after, _ = load_model(out / "last")
    assert not torch.equal(before.latent.weight, after.latent.weight)


def test_resume_refuses_a_different_config(tmp_path: Path) -> None:
    records = synthetic_records(60)
    out = tmp_path / "run"
    train(records, tiny_cfg(max_steps=10, eval_interval=10), out, encoder=tiny_encoder(), show_progress=False)
    with pytest.raises(ConfigError, match="resume"):
        train(
            records,
            tiny_cfg(d_model=8, max_steps=20),
            out,
            encoder=tiny_encoder(),
            resume=True,
            show_progress=False,
        )


def test_early_stopping_stops_before_max_steps(tmp_path: Path) -> None:
    records = synthetic_records(60)
    result = train(
        records,
        tiny_cfg(lr=1e-9, min_lr=0.0, warmup_steps=0, max_steps=1000, eval_interval=5, patience=2),
        tmp_path / "run",
        encoder=tiny_encoder(),
        show_progress=False,
    )
    assert result.steps == 15  # one evaluation sets the best, two without improvement stop it


def test_training_errors_tell_the_fix(tmp_path: Path) -> None:
    records = synthetic_records(40)
    with pytest.raises(ConfigError, match="set default_source"):
        train(
            records,
            tiny_cfg(default_source="arena-bench-v1"),
            tmp_path / "a",
            encoder=tiny_encoder(),
            show_progress=False,
        )
    with pytest.raises(DataError, match="min_labels_per_model"):
        train(
            records,
            tiny_cfg(min_labels_per_model=1000),
            tmp_path / "b",
            encoder=tiny_encoder(),
            show_progress=False,
        )
    with pytest.raises(DataError, match="no training rows"):
        train(
            records,
            tiny_cfg(exclude_sources=["synthetic"]),
            tmp_path / "c",
            encoder=tiny_encoder(),
            show_progress=False,
        )
    with pytest.raises(ValueError, match="extra"):
        TrainConfig(learning_rate=1.0)  # type: ignore[call-arg]


def test_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(ScorerError, match="not a scorer checkpoint"):
        load_model(tmp_path)
    records = synthetic_records(40)
    train(
        records,
        tiny_cfg(max_steps=5, eval_interval=5),
        tmp_path / "run",
        encoder=tiny_encoder(),
        show_progress=False,
    )
    best = tmp_path / "run" / "best"
    model, _ = load_model(best)
    half = save_model(model, tmp_path / "half", half=True)
    reloaded, _ = load_model(half)
    torch.testing.assert_close(reloaded.latent.weight, model.latent.weight, atol=1e-3, rtol=1e-3)
    config = json.loads((best / "config.json").read_text())
    config["model"]["d_model"] = 64
    (best / "config.json").write_text(json.dumps(config))
    with pytest.raises(ScorerError, match="does not fit"):
        load_model(best)
    (best / "config.json").write_text("{")
    with pytest.raises(ScorerError, match="not a valid scorer config"):
        load_model(best)
    (best / "model.safetensors").unlink()
    (best / "config.json").write_text(json.dumps(json.loads((half / "config.json").read_text())))
    with pytest.raises(ScorerError, match="missing"):
        load_model(best)
