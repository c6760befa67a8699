"""The checkpoints shipped in the package load with the real MiniLM and score the arena candidates; the default
scorer (``ShippedScorer``) loads the default checkpoint lazily and borrows the prior for models it lacks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from pointsman.catalog import load_catalog
from pointsman.errors import ScorerError, UnknownNameError
from pointsman.router import Router
from pointsman.scorer.checkpoint import load_model
from pointsman.scorer.default import ShippedScorer, scorer_by_name
from pointsman.scorer.neural import NeuralScorer, packaged_checkpoint
from pointsman.scorer.prior import PriorScorer

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
        # one trained scorer says where it stopped; an ensemble says it for each member
        assert "step" in meta or all("step" in m for m in meta["members"])
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


# ---------------------------------------------------------------------------------------------------------
# The default scorer: the shipped checkpoint, loaded lazily, with the prior for models without a latent


def test_shipped_scorer_borrows_the_prior_for_models_without_a_latent() -> None:
    fallback = PriorScorer({"house-model": (0.4, 0.1), "gpt-4-1106-preview": (0.0, 0.0)})
    scorer = ShippedScorer(fallback=fallback)
    assert scorer.models[-1] == "house-model" and scorer.models.count("gpt-4-1106-preview") == 1
    alone = scorer.predict(["hi", "there"], ["house-model"])
    assert not scorer.loaded, "a prediction that needs no latent loaded torch"
    assert alone.fallback == {"house-model": "prior"} and alone.quality.tolist() == [[0.4], [0.4]]
    mixed = scorer.predict(["hi"], ["gpt-4-1106-preview", "house-model"])
    assert scorer.loaded and mixed.fallback == {"house-model": "prior"}
    assert (
        mixed.quality[0, 1] == pytest.approx(0.4) and mixed.quality[0, 0] > 0.0
    )  # the latent, not the table
    with pytest.raises(UnknownNameError, match="no-such-model"):
        scorer.predict(["hi"], ["no-such-model"])


def test_router_flags_quality_borrowed_from_the_prior(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[catalog.models."house-model"]\ncontext_window = 8192\n'
        '[catalog.endpoints."house-model@vllm"]\nupstream_model = "h"\ninput_usd_per_mtok = 0\n'
        "output_usd_per_mtok = 0\nprice_as_of = 2026-01-01\nprice_verified = true\n"
        "[catalog.providers.vllm]\nenabled = true\n"
    )
    table = dict(PriorScorer().predict([""], PriorScorer().models).row(0))
    table["house-model"] = (0.99, 0.01)
    scorer = ShippedScorer(fallback=PriorScorer({m: (q, u or 0.0) for m, (q, u) in table.items()}))
    ranking = Router(catalog=load_catalog(config), scorer=scorer).rank("Sort a list in Python.", "router@q:1")
    house = next(r for r in ranking.ranked if r.model == "house-model")
    assert "quality: prior (scorer 'neural' has no latent for it)" in house.flags
    assert house.quality == pytest.approx(0.99) and ranking.chosen is house
    others = [r for r in ranking.ranked if r.model != "house-model"]
    assert others and not [f for r in others for f in r.flags if f.startswith("quality:")]


def test_warm_loads_the_scorer_and_prediction_stays_the_same() -> None:
    scorer = ShippedScorer()
    scorer.warm()
    assert scorer.loaded
    direct = NeuralScorer.load().predict(["Prove it."], CANDIDATES)
    assert np.allclose(scorer.predict(["Prove it."], CANDIDATES).quality, direct.quality)


def test_checkpoint_errors_tell_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ScorerError, match="not a scorer checkpoint"):
        ShippedScorer(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ScorerError, match="not a valid scorer config"):
        scorer_by_name(str(tmp_path))
    (tmp_path / "config.json").write_text('{"model": {"models": "gpt-4"}}')
    with pytest.raises(ScorerError, match="list of model names"):
        ShippedScorer(tmp_path)
    assert (
        scorer_by_name(str(packaged_checkpoint("base"))).models[:1]
        == ShippedScorer(packaged_checkpoint("base")).own_models[:1]
    )


# ---------------------------------------------------------------------------------------------------------
# The gateway builds the scorer from the config and warms it once, off the event loop, before serving


def _gateway(tmp_path: Path, scorer: str | None) -> TestClient:
    from pointsman.gateway.app import create_app
    from pointsman.gateway.billing import OpenAccessBilling
    from pointsman.settings import Settings

    config = tmp_path / "config.toml"
    config.write_text("" if scorer is None else f'[routing]\nscorer = "{scorer}"\n', encoding="utf-8")
    settings = Settings(data_dir=tmp_path / "data", config_file=config)
    return TestClient(create_app(settings, billing=OpenAccessBilling()))


def _route(client: TestClient, text: str) -> dict[str, object]:
    r = client.post("/v1/route", json={"model": "router", "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def test_gateway_warms_the_default_scorer_once_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bool] = []
    warm = ShippedScorer.warm

    def spy(self: ShippedScorer) -> None:
        try:
            asyncio.get_running_loop()
            calls.append(True)  # on an event loop: wrong
        except RuntimeError:
            calls.append(False)
        warm(self)
        assert self.loaded

    monkeypatch.setattr(ShippedScorer, "warm", spy)
    with _gateway(tmp_path, None) as client:
        assert calls == [False], "the lifespan must warm the scorer once, in a worker thread"
        assert _route(client, "Prove that there are infinitely many primes.")["scorer"] == "neural"
        assert _route(client, "Now write it as a poem.")["scorer"] == "neural"
    assert calls == [False], "a request warmed the scorer again"


def test_gateway_scorer_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        ShippedScorer, "warm", lambda self: pytest.fail("the prior gateway loaded the neural one")
    )
    with _gateway(tmp_path, "prior") as client:
        assert _route(client, "hi")["scorer"] == "prior"
    (tmp_path / "data").mkdir(exist_ok=True)
    with pytest.raises(UnknownNameError, match="unknown scorer 'nope'"), _gateway(tmp_path, "nope"):
        pass
