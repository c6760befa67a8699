"""Router-string grammar: every item type, aliases, float syntax, chains, round trips and error positions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pointsman.errors import RouterStringError
from pointsman.router_string import (
    DEFAULT_ROUTER,
    EndpointStep,
    RouterSpec,
    RouterStep,
    Threshold,
    Weights,
    parse_router_string,
)


def router_step(text: str) -> RouterStep:
    step = parse_router_string(text).primary
    assert isinstance(step, RouterStep)
    return step


def test_unify_example_weights_with_exponents() -> None:
    step = router_step("router@q:1|c:4.65e-03|t:2.07e-05|i:3.11e-02")
    assert step.weights == Weights(quality=1.0, cost=0.00465, ttft=2.07e-05, itl=0.0311)
    assert step.weights.cost == pytest.approx(0.00465, rel=0, abs=1e-15)


@pytest.mark.parametrize(
    ("number", "value"),
    [
        ("1", 1.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("4.65e-03", 0.00465),
        ("4.65E-3", 0.00465),
        ("1e2", 100.0),
        ("+2", 2.0),
        ("3.11e+02", 311.0),
    ],
)
def test_full_float_syntax(number: str, value: float) -> None:
    assert router_step(f"router@c:{number}").weights == Weights(cost=value)


@pytest.mark.parametrize(
    ("alias", "metric"),
    [
        ("q", "quality"),
        ("quality", "quality"),
        ("c", "cost"),
        ("cost", "cost"),
        ("ic", "input_cost"),
        ("input-cost", "input_cost"),
        ("oc", "output_cost"),
        ("output-cost", "output_cost"),
        ("t", "ttft"),
        ("ttft", "ttft"),
        ("time-to-first-token", "ttft"),
        ("i", "itl"),
        ("itl", "itl"),
        ("inter-token-latency", "itl"),
    ],
)
def test_weight_aliases(alias: str, metric: str) -> None:
    weights = router_step(f"router@{alias}:0.25").weights
    assert weights is not None
    assert weights.nonzero() == {metric: 0.25}


@pytest.mark.parametrize(
    ("meta", "metric"),
    [
        ("highest-quality", "quality"),
        ("lowest-cost", "cost"),
        ("lowest-input-cost", "input_cost"),
        ("lowest-output-cost", "output_cost"),
        ("lowest-ttft", "ttft"),
        ("lowest-itl", "itl"),
    ],
)
def test_meta_providers_are_shorthand_for_one_weight(meta: str, metric: str) -> None:
    step = router_step(f"router@{meta}")
    assert step.meta == meta and step.weights is None
    assert step.effective_weights(Weights(quality=1.0)).nonzero() == {metric: 1.0}
    model_link = parse_router_string(f"mixtral-8x7b-instruct-v0.1@{meta}").primary
    assert model_link == EndpointStep(model="mixtral-8x7b-instruct-v0.1", meta=meta)


def test_thresholds_one_and_two_sided_repeatable() -> None:
    step = router_step("router@q:1|c<5|1<itl<20|q>=0.7|t<=300|0.5<=oc<2|ic>0.1")
    assert step.thresholds == (
        Threshold(metric="cost", upper=5.0),
        Threshold(metric="itl", lower=1.0, upper=20.0),
        Threshold(metric="quality", lower=0.7, lower_inclusive=True),
        Threshold(metric="ttft", upper=300.0, upper_inclusive=True),
        Threshold(metric="output_cost", lower=0.5, lower_inclusive=True, upper=2.0),
        Threshold(metric="input_cost", lower=0.1),
    )
    both = router_step("router@c<5|c>1").thresholds
    assert len(both) == 2


def test_threshold_admits_respects_inclusivity() -> None:
    strict = Threshold(metric="cost", lower=1.0, upper=2.0)
    closed = Threshold(metric="cost", lower=1.0, lower_inclusive=True, upper=2.0, upper_inclusive=True)
    assert not strict.admits(1.0) and not strict.admits(2.0) and strict.admits(1.5)
    assert closed.admits(1.0) and closed.admits(2.0) and not closed.admits(2.01)


def test_search_space_items() -> None:
    step = router_step(
        "router@q:1|models:a,b|skip_models:c|providers:together,groq|skip_providers:openrouter"
    )
    assert step.models == ("a", "b")
    assert step.skip_models == ("c",)
    assert step.providers == ("together", "groq")
    assert step.skip_providers == ("openrouter",)


def test_named_router_and_risk() -> None:
    step = router_step("router@custom-1|q:1|risk:1.5")
    assert step.name == "custom-1"
    assert step.risk == 1.5
    assert router_step("router@prior").name == "prior"


def test_endpoint_model_and_bare_model_links() -> None:
    assert parse_router_string("gpt-4-1106-preview@openai").primary == EndpointStep(
        model="gpt-4-1106-preview", provider="openai"
    )
    assert parse_router_string("mixtral-8x7b-instruct-v0.1").primary == EndpointStep(
        model="mixtral-8x7b-instruct-v0.1"
    )
    assert parse_router_string("router").primary == RouterStep()


def test_fallback_chains() -> None:
    spec = parse_router_string("router@q:1|c:0.01->gpt-4-1106-preview@openai->claude-2@anthropic")
    assert len(spec.chain) == 3
    assert isinstance(spec.primary, RouterStep)
    assert [s.to_string() for s in spec.fallbacks] == ["gpt-4-1106-preview@openai", "claude-2@anthropic"]
    assert parse_router_string("a@p1->b@p2").chain == (
        EndpointStep(model="a", provider="p1"),
        EndpointStep(model="b", provider="p2"),
    )


def test_whitespace_around_items_is_allowed() -> None:
    assert router_step("router@ q:1 | c<5 ").thresholds == (Threshold(metric="cost", upper=5.0),)


@pytest.mark.parametrize(
    "text",
    [
        DEFAULT_ROUTER,
        "router@q:1|c:4.65e-03|t:2.07e-05|i:3.11e-02",
        "router@custom|lowest-cost|c<5|1<=itl<20|models:a,b|skip_providers:x|risk:2",
        "router@q:1|ic:0.5|oc:0.25|q>=0.7->gpt-4-1106-preview@openai",
        "mixtral-8x7b-instruct-v0.1@lowest-itl",
        "router",
    ],
)
def test_to_string_and_json_round_trip(text: str) -> None:
    spec = parse_router_string(text)
    assert parse_router_string(spec.to_string()) == spec
    assert RouterSpec.model_validate_json(spec.model_dump_json()) == spec


@settings(max_examples=60, deadline=None)
@given(
    q=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    c=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    upper=st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
)
def test_round_trip_any_floats(q: float, c: float, upper: float) -> None:
    spec = RouterSpec(
        chain=(
            RouterStep(
                weights=Weights(quality=q, cost=c), thresholds=(Threshold(metric="ttft", upper=upper),)
            ),
        )
    )
    assert parse_router_string(spec.to_string()) == spec


# ---------------------------------------------------------------------------------------------------------
# Errors point at the offending token and show the expected form.


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("router@q:1|c:abc", 13, "not a number"),
        ("router@q:1|x:1", 11, "unknown key"),
        ("router@q:1|zz<5", 11, "unknown metric"),
        ("router@q:1||c:1", 11, "empty item"),
        ("router@q:1|c:-1", 13, "cannot be negative"),
        ("router@q:1|q:2", 11, "given twice"),
        ("router@lowest-cost|q:1", 19, "cannot be mixed"),
        ("router@q:1|lowest-cost", 11, "cannot be mixed"),
        ("router@q:1|c<5x", 13, "not a number"),
        ("router@q:1|5<c<1", 11, "empty range"),
        ("router@q:1|c=>5", 11, "malformed threshold"),
        ("router@q:1|models:", 18, "needs at least one name"),
        ("router@q:1|risk:-1", 16, "cannot be negative"),
        ("router@q:1->", 12, "empty link"),
        ("router@", 7, "missing items"),
        ("gpt-4@", 6, "missing provider"),
        ("gpt-4@openai|c<5", 12, "belong to a 'router@' link"),
        ("router@q:1|name-late", 11, "unexpected item"),
        ("", 0, "empty router string"),
    ],
)
def test_errors_point_at_the_token(text: str, position: int, fragment: str) -> None:
    with pytest.raises(RouterStringError) as info:
        parse_router_string(text)
    err = info.value
    assert err.position == position, (err.position, err.message)
    assert fragment in err.message
    assert err.text == text
    caret_line = err.message.splitlines()[2]
    assert caret_line.index("^") == 2 + position  # two spaces of indent, then the caret under the token


def test_error_shows_expected_form() -> None:
    with pytest.raises(RouterStringError) as info:
        parse_router_string("router@q:1|bogus:1")
    assert info.value.expected is not None and "q:1" in info.value.expected
    assert "expected:" in info.value.message
    assert info.value.status_code == 400 and info.value.code == "invalid_router_string"


def test_position_counts_from_the_start_of_a_later_link() -> None:
    text = "gpt-4-1106-preview@openai->router@q:1|c:oops"
    with pytest.raises(RouterStringError) as info:
        parse_router_string(text)
    assert info.value.position == text.index("oops")
