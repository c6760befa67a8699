"""The objective: each weight moves the choice the right way; thresholds; context window; empty sets."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from pointsman.catalog import Endpoint
from pointsman.errors import NoCandidatesError
from pointsman.latency import LatencyFigure
from pointsman.objective import Candidate, as_router_step, rank
from pointsman.router_string import EndpointStep, Weights, parse_router_string

DEFAULT = Weights(quality=1.0)


def endpoint(
    name: str,
    *,
    price_in: str = "1",
    price_out: str = "1",
    context: int = 8192,
    max_out: int | None = None,
) -> Endpoint:
    model, provider = name.split("@")
    return Endpoint(
        name=name,
        model=model,
        provider=provider,
        upstream_model=model,
        input_usd_per_mtok=Decimal(price_in),
        output_usd_per_mtok=Decimal(price_out),
        price_as_of=date(2024, 1, 1),
        price_verified=True,
        context_window=context,
        max_output_tokens=max_out,
        api_style="openai",
        base_url="http://127.0.0.1:1/v1",
        api_key_env=None,
        ttft_prior_ms=100.0,
        itl_prior_ms=10.0,
    )


def cand(
    name: str,
    quality: float,
    *,
    price: str = "1",
    ttft: float = 100.0,
    itl: float = 10.0,
    uncertainty: float | None = 0.1,
    context: int = 8192,
    price_out: str | None = None,
    max_out: int | None = None,
) -> Candidate:
    return Candidate(
        endpoint=endpoint(
            name, price_in=price, price_out=price_out or price, context=context, max_out=max_out
        ),
        quality=quality,
        uncertainty=uncertainty,
        latency=LatencyFigure(ttft_ms=ttft, itl_ms=itl, source="benchmark"),
    )


# A strong, expensive, slow model; a weaker, cheap, fast one.
STRONG = cand("big@p", 0.9, price="15", ttft=800, itl=40)
WEAK = cand("small@p", 0.6, price="0.2", ttft=150, itl=5)


def chosen(router: str, candidates: list[Candidate], **kwargs: object) -> str:
    return rank(candidates, parse_router_string(router), default_weights=DEFAULT, **kwargs)[0].endpoint  # type: ignore[arg-type]


def test_quality_alone_picks_the_strong_model() -> None:
    assert chosen("router@q:1", [WEAK, STRONG]) == "big@p"


@pytest.mark.parametrize(
    "weight",
    ["c:0.05", "ic:0.05", "oc:0.05", "t:0.001", "i:0.02"],
)
def test_each_cost_and_latency_weight_moves_the_choice_to_the_cheap_fast_model(weight: str) -> None:
    assert chosen("router@q:1", [STRONG, WEAK]) == "big@p"
    assert chosen(f"router@q:1|{weight}", [STRONG, WEAK]) == "small@p"


@pytest.mark.parametrize(
    ("weight", "low", "high"),
    [("c", "0.01", "0.1"), ("t", "0.0001", "0.001"), ("i", "0.001", "0.02")],
)
def test_raising_a_weight_never_moves_the_choice_toward_the_costlier_endpoint(
    weight: str, low: str, high: str
) -> None:
    # Monotone: with more weight on a cost term, the chosen endpoint's value for that term does not rise.
    pool = [
        cand("a@p", 0.9, price="15", ttft=900, itl=45),
        cand("b@p", 0.8, price="3", ttft=400, itl=20),
        cand("c@p", 0.6, price="0.2", ttft=150, itl=5),
    ]
    picked = [chosen(f"router@q:1|{weight}:{w}", pool) for w in ("0", low, high)]
    order = {"a@p": 2, "b@p": 1, "c@p": 0}
    assert order[picked[0]] >= order[picked[1]] >= order[picked[2]]
    assert picked[0] != picked[2]


def test_score_terms_are_the_weighted_terms() -> None:
    ranked = rank([STRONG], parse_router_string("router@q:2|c:0.01|t:0.001|i:0.1"), default_weights=DEFAULT)
    r = ranked[0]
    terms = {t.metric: t.contribution for t in r.terms}
    assert terms == pytest.approx({"quality": 1.8, "cost": -0.15, "ttft": -0.8, "itl": -4.0})
    assert r.score == pytest.approx(sum(terms.values()))
    assert r.cost == 15.0


def test_cost_blends_input_and_output_three_to_one() -> None:
    c = cand("x@p", 0.5, price="1", price_out="5")
    r = rank([c], parse_router_string("router@c:1"), default_weights=DEFAULT)[0]
    assert r.cost == pytest.approx((3 * 1 + 5) / 4)
    assert {t.metric: t.value for t in r.terms}["cost"] == pytest.approx(2.0)


def test_request_cost_estimate_uses_prompt_tokens_and_max_tokens() -> None:
    c = cand("x@p", 0.5, price="2", price_out="8")
    r = rank(
        [c],
        parse_router_string("router@q:1"),
        default_weights=DEFAULT,
        prompt_tokens=1000,
        max_output_tokens=500,
    )[0]
    assert r.request_cost_usd == pytest.approx((1000 * 2 + 500 * 8) / 1e6)


def test_risk_aversion_prefers_the_confident_model() -> None:
    sure = cand("sure@p", 0.70, uncertainty=0.05)
    shaky = cand("shaky@p", 0.75, uncertainty=0.30)
    assert chosen("router@q:1", [sure, shaky]) == "shaky@p"
    assert chosen("router@q:1|risk:1", [sure, shaky]) == "sure@p"


def test_risk_with_unknown_uncertainty_is_flagged() -> None:
    c = cand("x@p", 0.7, uncertainty=None)
    r = rank([c], parse_router_string("router@q:1|risk:2"), default_weights=DEFAULT)[0]
    assert r.score == pytest.approx(0.7)
    assert "uncertainty: unknown, risk ignored" in r.flags


def test_meta_provider_lowest_cost_and_highest_quality() -> None:
    assert chosen("router@lowest-cost", [STRONG, WEAK]) == "small@p"
    assert chosen("router@highest-quality", [WEAK, STRONG]) == "big@p"
    assert chosen("router@lowest-ttft", [STRONG, WEAK]) == "small@p"


def test_default_weights_apply_when_none_given() -> None:
    assert (
        rank(
            [STRONG, WEAK], parse_router_string("router@models:big,small"), default_weights=Weights(cost=1.0)
        )[0].endpoint
        == "small@p"
    )


def test_ties_break_on_quality_then_cost() -> None:
    a = cand("a@p", 0.5, price="2")
    b = cand("b@p", 0.7, price="2")
    c = cand("c@p", 0.7, price="1")
    ranked = rank([a, b, c], parse_router_string("router@c:0"), default_weights=DEFAULT)
    assert [r.endpoint for r in ranked] == ["c@p", "b@p", "a@p"]


def test_thresholds_filter_and_keep_order() -> None:
    pool = [STRONG, WEAK, cand("mid@p", 0.8, price="3", ttft=400, itl=20)]
    assert [
        r.endpoint for r in rank(pool, parse_router_string("router@q:1|c<5"), default_weights=DEFAULT)
    ] == [
        "mid@p",
        "small@p",
    ]
    assert [
        r.endpoint for r in rank(pool, parse_router_string("router@q:1|q>=0.8"), default_weights=DEFAULT)
    ] == [
        "big@p",
        "mid@p",
    ]
    assert [
        r.endpoint for r in rank(pool, parse_router_string("router@q:1|10<itl<30"), default_weights=DEFAULT)
    ] == ["mid@p"]


def test_threshold_that_empties_the_set_is_named() -> None:
    with pytest.raises(NoCandidatesError) as info:
        rank([STRONG, WEAK], parse_router_string("router@q:1|c<0.1"), default_weights=DEFAULT)
    message = info.value.message
    assert "threshold 'c<0.1'" in message
    assert "small@p" in message and "loosen" in message
    assert info.value.status_code == 400


def test_second_threshold_named_when_it_empties_the_set() -> None:
    with pytest.raises(NoCandidatesError) as info:
        rank([STRONG, WEAK], parse_router_string("router@q:1|c<5|q>0.95"), default_weights=DEFAULT)
    assert "threshold 'q>0.95'" in info.value.message


def test_context_window_filter_drops_small_windows() -> None:
    small = cand("short@p", 0.9, context=4096)
    large = cand("long@p", 0.5, context=32768)
    assert chosen("router@q:1", [small, large], prompt_tokens=1000) == "short@p"
    assert chosen("router@q:1", [small, large], prompt_tokens=5000) == "long@p"
    # The answer's tokens count too.
    assert chosen("router@q:1", [small, large], prompt_tokens=3000, max_output_tokens=2000) == "long@p"


def test_context_window_emptying_the_set_is_named() -> None:
    with pytest.raises(NoCandidatesError) as info:
        rank(
            [cand("short@p", 0.9, context=4096)],
            parse_router_string("router@q:1"),
            default_weights=DEFAULT,
            prompt_tokens=9000,
        )
    assert "context-window filter" in info.value.message and "4096" in info.value.message


def test_output_limit_filter() -> None:
    capped = cand("capped@p", 0.9, max_out=4096)
    free = cand("free@p", 0.5)
    assert chosen("router@q:1", [capped, free], max_output_tokens=8000) == "free@p"
    with pytest.raises(NoCandidatesError, match="output-limit filter"):
        rank([capped], parse_router_string("router@q:1"), default_weights=DEFAULT, max_output_tokens=8000)


def test_search_space_filters_and_their_errors() -> None:
    pool = [cand("a@p1", 0.5), cand("a@p2", 0.6), cand("b@p1", 0.9)]
    assert [
        r.endpoint for r in rank(pool, parse_router_string("router@q:1|models:a"), default_weights=DEFAULT)
    ] == ["a@p2", "a@p1"]
    assert [
        r.endpoint
        for r in rank(pool, parse_router_string("router@q:1|providers:p1"), default_weights=DEFAULT)
    ] == ["b@p1", "a@p1"]
    both = rank(pool, parse_router_string("router@q:1|models:a|providers:p1"), default_weights=DEFAULT)
    assert [r.endpoint for r in both] == ["a@p1"]
    assert [
        r.endpoint
        for r in rank(
            pool, parse_router_string("router@q:1|skip_models:b|skip_providers:p2"), default_weights=DEFAULT
        )
    ] == ["a@p1"]
    with pytest.raises(NoCandidatesError, match="search space models:zzz"):
        rank(pool, parse_router_string("router@q:1|models:zzz"), default_weights=DEFAULT)
    with pytest.raises(NoCandidatesError, match="skip_providers:p1,p2"):
        rank(pool, parse_router_string("router@q:1|skip_providers:p1,p2"), default_weights=DEFAULT)


def test_empty_candidate_list_is_an_error() -> None:
    with pytest.raises(NoCandidatesError, match="no candidate endpoints"):
        rank([], parse_router_string("router@q:1"), default_weights=DEFAULT)


def test_endpoint_links_become_search_spaces() -> None:
    pool = [cand("m@cheap", 0.5, price="0.1"), cand("m@dear", 0.5, price="1"), cand("n@cheap", 0.9)]
    assert as_router_step(EndpointStep(model="m", provider="dear")).providers == ("dear",)
    assert chosen("m@dear", pool) == "m@dear"
    assert chosen("m@lowest-cost", pool) == "m@cheap"
    assert [r.endpoint for r in rank(pool, parse_router_string("m"), default_weights=Weights(cost=1.0))] == [
        "m@cheap",
        "m@dear",
    ]


def test_latency_flags_come_from_the_figure() -> None:
    prior = Candidate(
        endpoint=endpoint("x@p"),
        quality=0.5,
        uncertainty=None,
        latency=LatencyFigure(ttft_ms=100, itl_ms=10, source="prior"),
    )
    stale = Candidate(
        endpoint=endpoint("y@p"),
        quality=0.5,
        uncertainty=None,
        latency=LatencyFigure(ttft_ms=100, itl_ms=10, source="benchmark", stale=True),
    )
    ranked = {
        r.endpoint: r
        for r in rank([prior, stale], parse_router_string("router@q:1"), default_weights=DEFAULT)
    }
    assert "ttft: catalogue prior" in ranked["x@p"].flags and "itl: catalogue prior" in ranked["x@p"].flags
    assert "latency: stale benchmark figure" in ranked["y@p"].flags
