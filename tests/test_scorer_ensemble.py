"""Ensembles of read-outs: what they predict, how they are saved, trained, resumed and adapted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _scorer_tiny import synthetic_records, tiny_encoder
from test_scorer_model import inputs, tiny_config
from test_scorer_train import tiny_cfg

from pointsman.errors import ScorerError
from pointsman.scorer.checkpoint import load_model, load_train_state, save_model
from pointsman.scorer.ensemble import ScorerEnsemble, members_of
from pointsman.scorer.model import LatentScorer
from pointsman.scorer.neural import NeuralScorer
from pointsman.scorer.train import train

CODE = "Write a python function about river castle"
POEM = "Write a poem about winter garden"


def members(k: int = 3, **kw: object) -> list[LatentScorer]:
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        m = LatentScorer(tiny_config(**kw))
        with torch.no_grad():  # trained heads are not zero: give each member a read-out of its own
            m.head_w.normal_(std=0.5)
            m.prior.normal_(std=0.5)
        out.append(m.eval())
    return out


def test_ensemble_predicts_the_mean_and_adds_the_members_disagreement_to_the_spread() -> None:
    parts = members()
    ensemble = ScorerEnsemble(parts).eval()
    states, mask, model_idx, source_idx = inputs()
    out, loss = ensemble(states, mask, model_idx, source_idx)
    assert loss is None
    each = [m(states, mask, model_idx, source_idx)[0] for m in parts]
    scores = torch.stack([o.scores for o in each])  # (K, B, Q)
    spread = torch.stack([o.std for o in each])
    torch.testing.assert_close(out.scores, scores.mean(0))
    torch.testing.assert_close(out.std**2, spread.pow(2).mean(0) + scores.var(0, unbiased=False))
    assert bool((out.std >= spread.pow(2).mean(0).sqrt() - 1e-6).all()), "disagreement must add uncertainty"
    torch.testing.assert_close(torch.sigmoid(out.logits), out.scores)
    with pytest.raises(AssertionError, match="only predicts"):
        ensemble(states, mask, model_idx, source_idx, labels=torch.zeros(3, 4))


def test_each_latent_is_still_scored_as_if_alone() -> None:
    ensemble = ScorerEnsemble(members()).eval()
    states, mask, model_idx, source_idx = inputs()
    together, _ = ensemble(states, mask, model_idx, source_idx)
    for q in range(4):
        alone, _ = ensemble(states, mask, model_idx[:, q : q + 1], source_idx)
        torch.testing.assert_close(alone.scores[:, 0], together.scores[:, q])
        torch.testing.assert_close(alone.std[:, 0], together.std[:, q])


def test_members_must_share_one_config() -> None:
    with pytest.raises(AssertionError, match="at least two"):
        ScorerEnsemble(members(1))
    odd = LatentScorer(tiny_config(models=["a", "b", "c", "e"]))
    with pytest.raises(AssertionError, match="member 1 has another config"):
        ScorerEnsemble([members(1)[0], odd])


def test_checkpoint_round_trip_and_errors(tmp_path: Path) -> None:
    ensemble = ScorerEnsemble(members()).eval()
    save_model(ensemble, tmp_path / "ens", meta={"note": "x"})
    config = json.loads((tmp_path / "ens" / "config.json").read_text())
    assert config["members"] == 3 and config["meta"] == {"note": "x"}
    loaded, meta = load_model(tmp_path / "ens")
    assert isinstance(loaded, ScorerEnsemble) and len(members_of(loaded)) == 3 and meta == {"note": "x"}
    states, mask, model_idx, source_idx = inputs()
    torch.testing.assert_close(
        loaded(states, mask, model_idx, source_idx)[0].scores,
        ensemble(states, mask, model_idx, source_idx)[0].scores,
    )
    # One model written alone still loads as one model.
    save_model(members(1)[0], tmp_path / "one")
    assert isinstance(load_model(tmp_path / "one")[0], LatentScorer)
    for bad in ("two", 0, True):
        config["members"] = bad
        (tmp_path / "ens" / "config.json").write_text(json.dumps(config))
        with pytest.raises(ScorerError, match="'members' must be a whole number"):
            load_model(tmp_path / "ens")
    config["members"] = 4  # the weights hold three
    (tmp_path / "ens" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ScorerError, match="does not fit"):
        load_model(tmp_path / "ens")


def test_training_members_writes_one_ensemble_and_resume_skips_finished_members(tmp_path: Path) -> None:
    records = synthetic_records(120)
    run = tmp_path / "run"
    result = train(records, tiny_cfg(members=2), run, encoder=tiny_encoder(), show_progress=False)
    assert result.out_dir == run
    config = json.loads((run / "best" / "config.json").read_text())
    assert config["members"] == 2
    assert [m["seed"] for m in config["meta"]["members"]] == [0, 1]
    digests = {m["val_prompts"] for m in config["meta"]["members"]}
    assert len(digests) == 1, "every member must hold out the same validation prompts"
    for k in range(2):
        assert (run / f"member-{k}" / "best" / "model.safetensors").exists()
    scorer = NeuralScorer.load(run / "best", encoder=tiny_encoder())
    pred = scorer.predict([CODE, POEM], ["coder", "poet"])
    assert pred.quality[0, 0] > pred.quality[0, 1] and pred.quality[1, 1] > pred.quality[1, 0]
    a, b = (load_model(run / f"member-{k}" / "best")[0] for k in range(2))
    assert isinstance(a, LatentScorer) and isinstance(b, LatentScorer)
    assert not torch.equal(a.latent.weight, b.latent.weight), "members must be trained with their own seeds"

    state = load_train_state(run / "member-1" / "last")
    assert state is not None
    again = train(records, tiny_cfg(members=2), run, encoder=tiny_encoder(), show_progress=False, resume=True)
    assert again.steps == result.steps, "a finished member was trained again"
    after = load_train_state(run / "member-1" / "last")
    assert after is not None and after["step"] == state["step"]


def test_fit_adapts_every_member_of_an_ensemble(tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(synthetic_records(120), tiny_cfg(members=2), run, encoder=tiny_encoder(), show_progress=False)
    records = synthetic_records(60, seed=5)
    for r in records:  # on the new source the poet is much better whatever the prompt
        r.scores["poet"] = min(1.0, r.scores["poet"] + 0.4)
    records = [type(r)(r.id, "arena", r.task, r.split, r.prompt, r.label, r.scores) for r in records]
    base, _ = load_model(run / "best")
    fitted = NeuralScorer.fit(
        records, target_source="arena", base=run / "best", encoder=tiny_encoder(), steps=100
    )
    assert isinstance(fitted.model, ScorerEnsemble)
    for before, after in zip(members_of(base), members_of(fitted.model), strict=True):
        head, start = after.head_index("arena"), before.head_index(before.config.default_source)
        poet = after.config.models.index("poet")
        assert after.prior[head, poet] > before.prior[start, poet] + 0.3, "a member's offsets did not adapt"
    pred = fitted.predict([CODE], ["coder", "poet"])
    assert pred.uncertainty is not None and (pred.uncertainty > 0).all()
