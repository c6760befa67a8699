"""The Router API end to end on the shipped catalogue and default scorer, the prior scorer, token estimates and
latency sources. The objective's mechanics are tested over the prompt-independent prior (``router``); what the
default (the shipped neural scorer) changes is tested on ``shipped``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import pointsman
from pointsman.catalog import Endpoint, load_catalog
from pointsman.data import RoutingRecord, shared_data_dir
from pointsman.errors import ConfigError, NoCandidatesError, ScorerError, UnknownNameError
from pointsman.latency import CatalogPriors, LatencyFigure, LatencySource
from pointsman.router import Router, prompt_text
from pointsman.scorer.base import SCORERS, Prediction, Scorer, load_registry
from pointsman.scorer.default import DEFAULT_SCORER_NAME, ShippedScorer, default_scorer, scorer_by_name
from pointsman.scorer.prior import PRIOR_FILE, PriorScorer
from pointsman.tokens import count_message_tokens, estimate_tokens

PROMPT = "What is the largest of 3, 9 and 4?"


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(scorer=PriorScorer())


@pytest.fixture(scope="module")
def shipped() -> Router:
    return Router()


class FixedScorer(Scorer):
    """A scorer with fixed per-model qualities (prompt-independent), for steering the router in tests."""

    name = "fixed"

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table

    @property
    def models(self) -> list[str]:
        return sorted(self.table)

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        self.check_models(models)
        row = np.array([[self.table[m] for m in models]] * len(prompts))
        return Prediction(models=list(models), quality=row.reshape(len(prompts), len(models)))


def test_default_ranking_offline(shipped: Router) -> None:
    ranking = shipped.rank(PROMPT)
    assert ranking.chosen.endpoint in shipped.catalog.endpoint_table
    assert len(ranking.ranked) == len(shipped.catalog.endpoints())
    scores = [r.score for r in ranking.ranked]
    assert scores == sorted(scores, reverse=True)
    assert ranking.scorer == "neural"
    assert any("catalogue priors" in n for n in ranking.notes)
    assert len(ranking.plan) == 3 and ranking.plan[0] == ranking.chosen
    # Every catalogue model has a latent: no quality is borrowed from the prior, and it depends on the prompt.
    assert not [f for r in ranking.ranked for f in r.flags if f.startswith("quality:")]
    other = {r.endpoint: r.quality for r in shipped.rank("Write a limerick about a cat.").ranked}
    assert any(abs(other[r.endpoint] - r.quality) > 1e-4 for r in ranking.ranked)
    assert all(r.uncertainty is not None and r.uncertainty > 0 for r in ranking.ranked)


def test_quality_weight_alone_picks_the_best_prior_model(router: Router) -> None:
    ranking = router.rank(PROMPT, "router@q:1")
    assert ranking.chosen.model == "gpt-4-1106-preview"


def test_cost_weight_moves_to_a_cheaper_endpoint(router: Router) -> None:
    expensive = router.rank(PROMPT, "router@q:1").chosen
    cheap = router.rank(PROMPT, "router@q:1|c:0.1").chosen
    assert cheap.cost < expensive.cost


def test_lowest_cost_over_one_model(router: Router) -> None:
    ranking = router.rank(PROMPT, "mixtral-8x7b-instruct-v0.1@lowest-cost")
    assert {r.model for r in ranking.ranked} == {"mixtral-8x7b-instruct-v0.1"}
    assert ranking.chosen.cost == min(r.cost for r in ranking.ranked)


def test_explicit_endpoint_and_bare_model(router: Router) -> None:
    assert router.rank(PROMPT, "claude-2@anthropic").chosen.endpoint == "claude-2@anthropic"
    bare = router.rank(PROMPT, "llama-2-70b-chat")
    assert bare.chosen.model == "llama-2-70b-chat" and len(bare.ranked) >= 3


def test_chain_plan_is_each_links_winner(router: Router) -> None:
    plan = router.plan(
        PROMPT, "router@q:1|models:mixtral-8x7b-instruct-v0.1->gpt-4-1106-preview@openai->claude-2@anthropic"
    )
    assert [e.model for e in plan] == ["mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview", "claude-2"]
    assert all(isinstance(e, Endpoint) for e in plan)


def test_chain_skips_an_empty_link_with_a_note(router: Router) -> None:
    ranking = router.rank(PROMPT, "router@q:1|c<0.001->gpt-4-1106-preview@openai")
    assert ranking.chosen.endpoint == "gpt-4-1106-preview@openai"
    assert any("link 1" in n and "threshold" in n for n in ranking.notes)


def test_single_link_with_nothing_left_raises(router: Router) -> None:
    with pytest.raises(NoCandidatesError, match=r"threshold 'c<0\.001'"):
        router.rank(PROMPT, "router@q:1|c<0.001")


def test_every_link_empty_raises_the_first_error(router: Router) -> None:
    with pytest.raises(NoCandidatesError, match=r"c<0\.001"):
        router.rank(PROMPT, "router@q:1|c<0.001->router@q:1|q>0.99")


def test_unknown_names_in_router_strings_are_errors_not_empty_sets(router: Router) -> None:
    with pytest.raises(UnknownNameError, match="did you mean"):
        router.rank(PROMPT, "router@q:1|models:gpt-4-1106-previw")
    with pytest.raises(UnknownNameError, match="did you mean"):
        router.rank(PROMPT, "mixtral-8x7b-instruct-v0.1@togeth")
    with pytest.raises(UnknownNameError, match="unknown router 'nonexistent'"):
        router.rank(PROMPT, "router@nonexistent|q:1")


def test_models_and_providers_intersect(router: Router) -> None:
    ranking = router.rank(
        PROMPT, "router@q:1|models:mixtral-8x7b-instruct-v0.1,llama-2-70b-chat|providers:groq,fireworks"
    )
    assert {r.endpoint for r in ranking.ranked} == {
        "mixtral-8x7b-instruct-v0.1@groq",
        "mixtral-8x7b-instruct-v0.1@fireworks",
        "llama-2-70b-chat@groq",
        "llama-2-70b-chat@fireworks",
    }
    with pytest.raises(NoCandidatesError, match="search space"):
        router.rank(PROMPT, "router@q:1|models:claude-2|providers:groq")


def test_context_window_filter_uses_the_prompt_length(router: Router) -> None:
    long_prompt = "word " * 30000  # far beyond 4K-8K windows, within 32K+
    ranking = router.rank(long_prompt, "router@q:1")
    assert ranking.prompt_tokens > 8192
    assert all(
        router.catalog.endpoint_table[r.endpoint].context_window >= ranking.prompt_tokens
        for r in ranking.ranked
    )
    assert "llama-2-70b-chat@together" not in {r.endpoint for r in ranking.ranked}
    with pytest.raises(NoCandidatesError, match="context-window"):
        router.rank("word " * 300000, "router@q:1")


def test_chat_messages_are_accepted(router: Router) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": [{"type": "text", "text": PROMPT}]},
    ]
    assert prompt_text(messages) == PROMPT
    ranking = router.rank(messages, "router@q:1|c:0.01")
    assert ranking.prompt_tokens == count_message_tokens(messages)


def test_named_scorer_and_custom_loader() -> None:
    fixed = FixedScorer({"mixtral-8x7b-instruct-v0.1": 0.99, "gpt-4-1106-preview": 0.1})
    r = Router(scorers={"mine": fixed})
    ranking = r.rank(PROMPT, "router@mine|q:1")
    assert ranking.chosen.model == "mixtral-8x7b-instruct-v0.1" and ranking.scorer == "fixed"
    # Models the scorer does not know are dropped with a note.
    assert {x.model for x in ranking.ranked} == {"mixtral-8x7b-instruct-v0.1", "gpt-4-1106-preview"}
    assert any("cannot score" in n for n in ranking.notes)
    loaded = Router(load_scorer=lambda name: fixed)
    assert loaded.rank(PROMPT, "router@anything|q:1").chosen.model == "mixtral-8x7b-instruct-v0.1"
    assert Router(scorer=fixed).rank(PROMPT, "router@prior|q:1").scorer == "prior"


def test_default_router_must_be_a_router_link() -> None:
    with pytest.raises(ConfigError, match=r"single 'router@\.\.\.' link"):
        Router(default_router="gpt-4-1106-preview@openai")


def test_scorer_knowing_no_candidate_is_a_clear_error() -> None:
    r = Router(scorer=FixedScorer({"nothing-here": 0.5}))
    with pytest.raises(NoCandidatesError, match="knows none of the candidate models"):
        r.rank(PROMPT, "router@q:1")


def test_catalogue_quality_prior_routes_to_an_unscored_model(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[catalog.models."house-model"]\ncontext_window = 8192\nquality_prior = 0.99\n'
        '[catalog.endpoints."house-model@vllm"]\nupstream_model = "h"\ninput_usd_per_mtok = 0\n'
        "output_usd_per_mtok = 0\nprice_as_of = 2026-01-01\nprice_verified = true\n"
        "[catalog.providers.vllm]\nenabled = true\n"
    )
    ranking = Router(catalog=load_catalog(config)).rank(PROMPT, "router@q:1")
    assert ranking.chosen.endpoint == "house-model@vllm"
    assert "quality: catalogue quality_prior" in ranking.chosen.flags


class ExplodingScorer(FixedScorer):
    """Knows some models but must never be asked to predict."""

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        raise AssertionError(f"predicted {list(models)} for a link that names its model")


def test_an_explicit_endpoint_needs_no_quality_prediction(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[catalog.endpoints."house-model@together"]\nupstream_model = "h"\ncontext_window = 4096\n'
        "input_usd_per_mtok = 1\noutput_usd_per_mtok = 1\nprice_as_of = 2026-01-01\n"
    )
    catalog = load_catalog(config)
    r = Router(catalog=catalog, scorer=ExplodingScorer({"claude-2": 0.5, "mixtral-8x7b-instruct-v0.1": 0.5}))
    ranking = r.rank(PROMPT, "house-model@together")
    assert ranking.chosen.endpoint == "house-model@together"
    assert "quality: unknown (no prior for it)" in ranking.chosen.flags
    # A named model the prior knows shows the prior's number, flagged as not predicted.
    named = r.rank(PROMPT, "claude-2@anthropic").chosen
    assert named.quality == pytest.approx(PriorScorer().predict([PROMPT], ["claude-2"]).quality[0, 0])
    assert "quality: prior, not predicted (the request names the model)" in named.flags
    cheapest = r.rank(PROMPT, "mixtral-8x7b-instruct-v0.1@lowest-cost")
    assert {x.model for x in cheapest.ranked} == {"mixtral-8x7b-instruct-v0.1"}
    with pytest.raises(NoCandidatesError, match="knows none"):
        r.rank(PROMPT, "router@q:1|models:house-model")
    # The shipped scorer is not even loaded for them.
    default = Router(catalog=catalog)
    default.rank(PROMPT, "house-model@together")
    default.rank(PROMPT, "claude-2@anthropic->mixtral-8x7b-instruct-v0.1")
    assert isinstance(default.scorer, ShippedScorer) and not default.scorer.loaded


def test_latency_source_figures_override_priors() -> None:
    class Measured:
        def figures(self, endpoints: Sequence[Endpoint]) -> dict[str, LatencyFigure]:
            return {
                e.name: LatencyFigure(ttft_ms=1.0, itl_ms=0.1, source="benchmark")
                for e in endpoints
                if e.provider == "together"
            }

    assert isinstance(Measured(), LatencySource)
    ranking = Router(latency=Measured()).rank(PROMPT, "router@lowest-ttft")
    assert ranking.chosen.provider == "together" and ranking.chosen.ttft_ms == 1.0
    assert "ttft: catalogue prior" not in ranking.chosen.flags
    others = [r for r in ranking.ranked if r.provider != "together"]
    assert others and all("ttft: catalogue prior" in r.flags for r in others)


def test_catalog_priors_are_flagged() -> None:
    e = load_catalog().endpoint("claude-2@anthropic")
    figure = CatalogPriors().figures([e])[e.name]
    assert figure.is_prior and figure.ttft_ms == e.ttft_prior_ms and figure.itl_ms == e.itl_prior_ms


def test_ranking_to_dict_has_the_json_shape(shipped: Router) -> None:
    payload = json.loads(json.dumps(shipped.rank(PROMPT).to_dict()))
    assert payload["scorer"] == "neural"
    assert set(payload) >= {"ranked", "chosen"}
    for row in payload["ranked"]:
        assert {"endpoint", "quality", "cost", "ttft_ms", "itl_ms", "score"} <= set(row)
    assert payload["chosen"] == payload["ranked"][0]["endpoint"]


def test_public_api_is_explicit_and_lazy() -> None:
    for name in pointsman.__all__:
        assert getattr(pointsman, name) is not None
    with pytest.raises(AttributeError):
        _ = pointsman.NotAThing  # type: ignore[attr-defined]
    assert pointsman.Router is Router


# ---------------------------------------------------------------------------------------------------------
# The prior scorer


def test_prior_is_registered_and_neural_is_the_default() -> None:
    from pointsman.scorer.neural import NeuralScorer, packaged_checkpoint

    registry = load_registry()
    assert SCORERS["prior"] is PriorScorer and registry["neural"] is NeuralScorer
    scorer = default_scorer()
    assert isinstance(scorer, ShippedScorer) and scorer.name == DEFAULT_SCORER_NAME == "neural"
    assert scorer.checkpoint == packaged_checkpoint("default") and not scorer.loaded
    assert set(load_catalog().models) <= set(scorer.own_models), "a catalogue model has no latent"
    assert isinstance(Router().scorer, ShippedScorer)
    # The prior stays one name away: the CLI's --scorer, the config's [routing] scorer, router@prior.
    assert isinstance(scorer_by_name("prior"), PriorScorer)
    assert isinstance(scorer_by_name(None), ShippedScorer)
    assert Router(scorer=scorer_by_name("prior")).rank(PROMPT).scorer == "prior"
    with pytest.raises(UnknownNameError, match="unknown scorer 'nope'"):
        scorer_by_name("nope")


def test_prior_covers_every_catalogue_model_and_is_prompt_independent() -> None:
    prior = PriorScorer()
    models = load_catalog().models
    assert set(models) <= set(prior.models)
    p = prior.predict(["a", "something else entirely"], models)
    assert p.quality.shape == (2, len(models)) and p.uncertainty is not None
    assert np.array_equal(p.quality[0], p.quality[1])
    assert ((p.quality >= 0) & (p.quality <= 1)).all()
    with pytest.raises(UnknownNameError):
        prior.predict(["x"], ["no-such-model"])


def test_prior_fit_is_the_mean_per_model() -> None:
    records = [
        RoutingRecord(
            id="1", source="s", task="", split="train", prompt="a", label="", scores={"m": 1.0, "n": 0.0}
        ),
        RoutingRecord(id="2", source="s", task="", split="train", prompt="b", label="", scores={"m": 0.5}),
        RoutingRecord(id="3", source="t", task="", split="train", prompt="c", label="", scores={"m": 0.0}),
    ]
    fitted = PriorScorer.fit(records, target_source="s")
    row = fitted.predict(["?"], ["m", "n"]).row(0)
    assert row["m"][0] == pytest.approx(0.75) and row["n"][0] == 0.0
    with pytest.raises(ScorerError, match="no scored records"):
        PriorScorer.fit(records, target_source="absent")


def test_prior_file_errors_tell_the_fix(tmp_path: Path) -> None:
    from pointsman.scorer import prior as prior_module

    broken = tmp_path / "prior.json"
    broken.write_text("{not json")
    with pytest.raises(ScorerError, match=r"make_quality_prior\.py"):
        prior_module._load(broken)


def test_prior_file_matches_a_regeneration_from_the_shared_data() -> None:
    data = shared_data_dir()
    if data is None:
        pytest.skip("../shared/data is not present (a fresh clone); the prior cannot be regenerated")
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_quality_prior", Path(__file__).resolve().parent.parent / "scripts" / "make_quality_prior.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = json.loads(json.dumps(module.build(data)))
    shipped = json.loads(PRIOR_FILE.read_text())
    assert rebuilt["models"] == shipped["models"]
    # Arena models keep their raw mean grade; the ordering at the top is GPT-4 Turbo, then GPT-4 (0314).
    models = shipped["models"]
    assert models["gpt-4-1106-preview"]["method"] == "direct"
    assert (
        models["gpt-4-1106-preview"]["quality"]
        > models["gpt-4-0314"]["quality"]
        > models["mixtral-8x7b-instruct-v0.1"]["quality"]
    )


# ---------------------------------------------------------------------------------------------------------
# Token estimates err high


@pytest.mark.parametrize(
    ("text", "at_least"),
    [
        ("", 0),
        ("hello", 1),
        ("What is the largest of 3, 9 and 4?", 12),  # GPT tokenizers: 13-14
        ("def f(x):\n    return x * 2\n", 11),  # cl100k: about 11
        ("这是一个测试句子", 8),  # CJK: at least one token per character
        ("1234567890" * 10, 34),  # digits tokenize in groups of up to 3
    ],
)
def test_estimate_tokens_errs_high(text: str, at_least: int) -> None:
    assert estimate_tokens(text) >= at_least


def test_estimate_grows_with_text() -> None:
    assert estimate_tokens("word " * 100) > estimate_tokens("word " * 10) > 0


def test_message_tokens_include_overheads_and_images() -> None:
    plain = count_message_tokens([{"role": "user", "content": "hi"}])
    assert plain == estimate_tokens("hi") + 4 + 3
    with_image = count_message_tokens(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}],
            }
        ]
    )
    assert with_image == plain + 1105
    named = count_message_tokens([{"role": "user", "content": "hi", "name": "alice"}])
    assert named > plain
    assert count_message_tokens([{"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}]) > 7
