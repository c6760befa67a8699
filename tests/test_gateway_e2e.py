"""End to end: the gateway and the fake provider run as real servers on loopback; the real ``openai`` client
(``max_retries=0``, so only the gateway retries) drives them through every fault script, streaming and not,
for both API styles (OpenAI-compatible and Anthropic Messages)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
from _gateway_stack import gateway_stack, wait_until

from pointsman.gateway.billing import OpenAccessBilling
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import free_port
from pointsman.providers.fake import VOCAB, FakeProviderServer

STYLES = {"fake": "openai", "ant": "anthropic"}  # provider name -> API style
MESSAGES = [{"role": "user", "content": "Say hello."}]
ANSWER = "".join(VOCAB[:5])

# endpoint model name -> script, for faults that strike before the first token (fallback must hide them)
BEFORE_FIRST_TOKEN = {
    "r429": "fault=429&retry_after=0.05",
    "e500": "fault=500",
    "e503": "fault=503",
    "refuse": "fault=refuse",
    "slow": "fault=slow_first_byte&delay_ms=3000",
    "stall0": "fault=stall&after=0&delay_ms=3000",
    "close0": "fault=close_early&after=0",
    "bad0": "fault=malformed&after=0",
}
# faults after two tokens: a stream must end with an error event; a non-stream reply falls back
AFTER_FIRST_TOKEN = {
    "stall2": "fault=stall&after=2&delay_ms=3000",
    "close2": "fault=close_early&after=2",
    "bad2": "fault=malformed&after=2",
}
PASSING = {"ok": "tokens=5", "split": "fault=split&tokens=11", "nousage": "fault=no_usage&tokens=5"}
PASSING["huge"] = "fault=huge_chunk&huge_bytes=300000&tokens=2"

SETTINGS = GatewaySettings(
    billing="open",
    retries=1,
    backoff_base_s=0.001,
    backoff_max_s=0.01,
    first_token_timeout_s=0.6,  # generous enough for a loaded CI machine, short enough to keep tests fast
    idle_timeout_s=0.6,
    total_timeout_s=1.0,
    breaker_failures=10_000,
    max_body_bytes=64 * 1024,
    max_tokens_cap=100_000,
)


def key(model: str, provider: str) -> str:
    """The fake provider's stats key of an endpoint (its upstream model id)."""
    scripts = {**BEFORE_FIRST_TOKEN, **AFTER_FIRST_TOKEN, **PASSING}
    return f"fake-model#{scripts[model]}&tag={provider}"


@dataclass
class Stack:
    fake: FakeProviderServer
    base_url: str
    billing: OpenAccessBilling
    client: openai.OpenAI

    def count(self, model: str, provider: str) -> int:
        return self.fake.stats[key(model, provider)]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    scripts = {**BEFORE_FIRST_TOKEN, **AFTER_FIRST_TOKEN, **PASSING}
    endpoints = {f"{m}@{p}": key(m, p) for m in scripts for p in STYLES}
    extra = {p: {"api_style": s} for p, s in STYLES.items()}
    options = {"extra_providers": extra}
    with gateway_stack(endpoints, gateway_settings=SETTINGS, catalog_options=options) as gateway:
        yield Stack(gateway.fake, gateway.base_url, gateway.billing, gateway.client(timeout=20))


@pytest.fixture(autouse=True)
def _fresh_counts(stack: Stack) -> None:
    stack.fake.stats.clear()


def stream_text(
    stack: Stack, model: str, **kw: object
) -> tuple[str, list[openai.types.chat.ChatCompletionChunk]]:
    chunks = list(stack.client.chat.completions.create(model=model, messages=MESSAGES, stream=True, **kw))  # type: ignore[call-overload]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


@pytest.mark.parametrize("provider", STYLES)
def test_reply_names_the_endpoint(stack: Stack, provider: str) -> None:
    raw = stack.client.chat.completions.with_raw_response.create(model=f"ok@{provider}", messages=MESSAGES)  # type: ignore[arg-type]
    reply = raw.parse()
    assert raw.headers["x-pointsman-endpoint"] == f"ok@{provider}"
    assert reply.model == f"ok@{provider}"
    assert reply.choices[0].message.content == ANSWER
    assert reply.usage is not None and reply.usage.completion_tokens == 5


@pytest.mark.parametrize("provider", STYLES)
def test_stream_names_the_endpoint_and_reports_usage(stack: Stack, provider: str) -> None:
    text, chunks = stream_text(stack, f"ok@{provider}", stream_options={"include_usage": True})
    assert text == ANSWER
    assert {c.model for c in chunks} == {f"ok@{provider}"}
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    assert chunks[-1].choices == []


def test_usage_chunk_only_when_asked(stack: Stack) -> None:
    _, chunks = stream_text(stack, "ok@fake")
    assert all(c.usage is None for c in chunks)


@pytest.mark.parametrize("provider", STYLES)
@pytest.mark.parametrize("fault", sorted(BEFORE_FIRST_TOKEN))
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "reply"])
def test_fault_before_first_token_falls_back_after_exact_retries(
    stack: Stack, provider: str, fault: str, stream: bool
) -> None:
    model = f"{fault}@{provider}->ok@{provider}"
    if stream:
        text, chunks = stream_text(stack, model)
        assert {c.model for c in chunks} == {f"ok@{provider}"}
    else:
        reply = stack.client.chat.completions.create(model=model, messages=MESSAGES)  # type: ignore[arg-type]
        text = reply.choices[0].message.content or ""
        assert reply.model == f"ok@{provider}"
    assert text == ANSWER
    assert stack.count(fault, provider) == 2, "retries=1 means exactly two attempts on the failing endpoint"
    assert stack.count("ok", provider) == 1


@pytest.mark.parametrize("provider", STYLES)
@pytest.mark.parametrize("fault", sorted(AFTER_FIRST_TOKEN))
def test_fault_after_first_token_ends_stream_with_error_event(
    stack: Stack, provider: str, fault: str
) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIError, match="truncated") as info:
        for chunk in stack.client.chat.completions.create(
            model=f"{fault}@{provider}->ok@{provider}",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
        ):
            received.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(received) == "".join(VOCAB[:2]), "the tokens before the failure reach the client"
    assert fault in str(info.value)
    assert stack.count(fault, provider) == 1, "no retry once output has reached the client"
    assert stack.count("ok", provider) == 0, "no fallback once output has reached the client"


def test_error_event_is_followed_by_done(stack: Stack) -> None:
    body = {"model": "close2@fake", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", stack.base_url + "/chat/completions", json=body, timeout=10) as resp:
        events = [line for line in resp.iter_lines() if line.startswith("data: ")]
    assert '"error"' in events[-2]
    assert events[-1] == "data: [DONE]"


@pytest.mark.parametrize("provider", STYLES)
@pytest.mark.parametrize("fault", sorted(AFTER_FIRST_TOKEN))
def test_non_stream_reply_falls_back_on_mid_body_faults(stack: Stack, provider: str, fault: str) -> None:
    reply = stack.client.chat.completions.create(
        model=f"{fault}@{provider}->ok@{provider}", messages=MESSAGES
    )  # type: ignore[arg-type]
    assert reply.model == f"ok@{provider}"
    assert stack.count(fault, provider) == 2


@pytest.mark.parametrize("provider", STYLES)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "reply"])
def test_split_utf8_and_json_arrive_intact(stack: Stack, provider: str, stream: bool) -> None:
    if stream:
        text, _ = stream_text(stack, f"split@{provider}")
    else:
        reply = stack.client.chat.completions.create(model=f"split@{provider}", messages=MESSAGES)  # type: ignore[arg-type]
        text = reply.choices[0].message.content or ""
    assert text == "".join(VOCAB[:11])


@pytest.mark.parametrize("provider", STYLES)
def test_huge_chunk_passes_through(stack: Stack, provider: str) -> None:
    text, _ = stream_text(stack, f"huge@{provider}")
    assert len(text) > 300_000


@pytest.mark.parametrize("provider", STYLES)
def test_missing_usage_is_estimated_and_marked(stack: Stack, provider: str) -> None:
    reply = stack.client.chat.completions.create(model=f"nousage@{provider}", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert (reply.usage.model_extra or {}).get("estimated") is True
    _, chunks = stream_text(stack, f"nousage@{provider}", stream_options={"include_usage": True})
    assert chunks[-1].usage is not None and (chunks[-1].usage.model_extra or {}).get("estimated") is True

    def estimated_settlements() -> set[str]:
        return {r for r, e, u in stack.billing.settled if e == f"nousage@{provider}" and u.estimated}

    # A stream settles just after the client has read [DONE]: wait for it rather than race it.
    wait_until(lambda: len(estimated_settlements()) >= 2, "both requests settled with estimated usage")
    assert len(estimated_settlements()) == 2


def test_single_failing_endpoint_reports_every_attempt(stack: Stack) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        stack.client.chat.completions.create(model="e500@fake", messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.status_code == 502
    assert "after 2 attempt(s)" in info.value.message
    assert stack.count("e500", "fake") == 2


def test_upstream_429_reaches_the_client_with_retry_after(stack: Stack) -> None:
    with pytest.raises(openai.RateLimitError) as info:
        stack.client.chat.completions.create(model="r429@fake", messages=MESSAGES)  # type: ignore[arg-type]
    assert info.value.response.headers["retry-after"] == "0.05"
    assert stack.count("r429", "fake") == 2


def test_fallback_depth_limits_the_walk(stack: Stack) -> None:
    chain = "e500@fake->e503@fake->refuse@fake->ok@fake"  # ok is fourth; depth is 3
    with pytest.raises(openai.APIStatusError):
        stack.client.chat.completions.create(model=chain, messages=MESSAGES)  # type: ignore[arg-type]
    assert stack.count("ok", "fake") == 0
    assert [stack.count(m, "fake") for m in ("e500", "e503", "refuse")] == [2, 2, 2]


def test_explain_by_header_lists_candidates_and_attempts(stack: Stack) -> None:
    reply = stack.client.chat.completions.create(
        model="e500@fake->ok@fake",
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_headers={"x-pointsman-explain": "1"},
    )
    why = (reply.model_extra or {})["pointsman"]
    assert why["endpoint"] == "ok@fake"
    assert [c["endpoint"] for c in why["candidates"]] == ["e500@fake", "ok@fake"]
    assert [a["outcome"] for a in why["attempts"]] == ["upstream_status_error", "upstream_status_error", "ok"]


def test_explain_by_body_extension_in_a_stream(stack: Stack) -> None:
    _, chunks = stream_text(stack, "ok@fake", extra_body={"pointsman": {"explain": True}})
    assert (chunks[0].model_extra or {})["pointsman"]["endpoint"] == "ok@fake"
    assert all("pointsman" not in (c.model_extra or {}) for c in chunks[1:])


def test_no_explain_unless_asked(stack: Stack) -> None:
    reply = stack.client.chat.completions.create(model="ok@fake", messages=MESSAGES)  # type: ignore[arg-type]
    assert "pointsman" not in (reply.model_extra or {})


def test_settles_the_endpoint_that_answered_and_releases_failures(stack: Stack) -> None:
    raw = stack.client.chat.completions.with_raw_response.create(
        model="e500@fake->ok@fake", messages=MESSAGES
    )  # type: ignore[arg-type]
    request_id = raw.headers["x-request-id"]
    settled = [(e, u) for r, e, u in stack.billing.settled if r == request_id]
    assert settled and settled[0][0] == "ok@fake" and settled[0][1].completion_tokens == 5
    hold = next(h for h in stack.billing.reserved if h.request_id == request_id)
    assert hold.max_output_tokens == SETTINGS.default_max_output_tokens
    with pytest.raises(openai.APIStatusError):
        stack.client.chat.completions.create(model="e503@fake", messages=MESSAGES)  # type: ignore[arg-type]
    assert stack.billing.released, "a request nothing answered releases its hold"


def test_aborted_stream_settles_what_was_generated(stack: Stack) -> None:
    body = {"model": "close2@fake", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", stack.base_url + "/chat/completions", json=body, timeout=10) as resp:
        request_id = resp.headers["x-request-id"]
        resp.read()
    wait_until(
        lambda: any(r == request_id for r, _, _ in stack.billing.settled), "the aborted stream settled"
    )
    settled = [u for r, _, u in stack.billing.settled if r == request_id]
    assert settled and settled[0].estimated and settled[0].completion_tokens >= 2


def test_client_disconnect_mid_stream_still_settles(stack: Stack) -> None:
    body = {"model": "stall2@fake", "messages": MESSAGES, "stream": True}
    with httpx.stream("POST", stack.base_url + "/chat/completions", json=body, timeout=10) as resp:
        request_id = resp.headers["x-request-id"]
        next(resp.iter_raw())
    wait_until(lambda: any(r == request_id for r, _, _ in stack.billing.settled), "the cut stream settled")


# --- bad input -----------------------------------------------------------------------------------------


def post(stack: Stack, body: object, **headers: str) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(stack.base_url + "/chat/completions", content=body, headers=headers, timeout=10)
    return httpx.post(stack.base_url + "/chat/completions", json=body, headers=headers, timeout=10)


def assert_openai_error(resp: httpx.Response, status: int, *fragments: str) -> None:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    for fragment in fragments:
        assert fragment in error["message"]


def test_invalid_json_is_400(stack: Stack) -> None:
    assert_openai_error(
        post(stack, b"{not json", **{"content-type": "application/json"}), 400, "not valid JSON"
    )


def test_schema_errors_are_400_naming_the_field(stack: Stack) -> None:
    assert_openai_error(post(stack, {"model": "ok@fake"}), 400, "messages")
    assert_openai_error(
        post(stack, {"model": "ok@fake", "messages": [{"role": "robot"}]}), 400, "messages.0.role"
    )
    assert_openai_error(post(stack, [1, 2]), 400, "JSON object")
    resp = post(stack, {"model": "ok@fake", "messages": MESSAGES, "pointsman": {"explian": True}})
    assert_openai_error(resp, 400, "pointsman.explian")


def test_body_over_the_cap_is_413(stack: Stack) -> None:
    big = {"model": "ok@fake", "messages": [{"role": "user", "content": "x" * (SETTINGS.max_body_bytes + 1)}]}
    assert_openai_error(post(stack, big), 413, "max_body_bytes")


def test_absurd_max_tokens_is_rejected_with_the_limit(stack: Stack) -> None:
    resp = post(stack, {"model": "ok@fake", "messages": MESSAGES, "max_tokens": 10**9})
    assert_openai_error(resp, 400, "max_tokens=1000000000", "100000")
    assert_openai_error(
        post(stack, {"model": "ok@fake", "messages": MESSAGES, "max_tokens": 0}), 400, "at least 1"
    )


def test_unknown_model_is_404_with_close_matches(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError, match="did you mean 'ok@fake'"):
        stack.client.chat.completions.create(model="ok@fak", messages=MESSAGES)  # type: ignore[arg-type]


def test_bad_router_string_is_400_pointing_at_the_token(stack: Stack) -> None:
    resp = post(stack, {"model": "router@q:1|zz:2", "messages": MESSAGES})
    assert_openai_error(resp, 400, "unknown key 'zz'", "^")


def test_bare_model_is_routed_by_the_default_ranker(stack: Stack) -> None:
    reply = stack.client.chat.completions.create(model="ok", messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.model in ("ok@fake", "ok@ant")


def test_unknown_route_is_openai_shaped_404(stack: Stack) -> None:
    assert_openai_error(httpx.get(stack.base_url + "/nothing-here"), 404, "Not Found")


# --- other resources -----------------------------------------------------------------------------------


def test_models_lists_endpoints_models_and_routers(stack: Stack) -> None:
    data = {m.id: m.model_extra for m in stack.client.models.list()}
    assert data["ok@ant"]["pointsman"]["api_style"] == "anthropic"  # type: ignore[index]
    assert data["ok"]["pointsman"]["kind"] == "model"  # type: ignore[index]
    assert any(k.startswith("router@") for k in data)


def test_route_dry_run_sends_nothing(stack: Stack) -> None:
    resp = httpx.post(
        stack.base_url + "/route", json={"model": "router@q:1|c:0.01", "messages": MESSAGES}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["candidates"] and "terms" in body["candidates"][0]
    assert sum(stack.fake.stats.values()) == 0


def test_healthz_and_metrics(stack: Stack) -> None:
    stack.client.chat.completions.create(model="e500@fake->ok@fake", messages=MESSAGES)  # type: ignore[arg-type]
    root = stack.base_url.removesuffix("/v1")
    assert httpx.get(root + "/healthz").json()["status"] == "ok"
    text = httpx.get(root + "/metrics").text
    for name in (
        "pointsman_requests_total",
        "pointsman_fallbacks_total",
        "pointsman_retries_total",
        "pointsman_upstream_attempts_total",
        "pointsman_upstream_first_token_seconds_bucket",
        "pointsman_scorer_seconds_bucket",
        "pointsman_overhead_seconds_bucket",
        "pointsman_errors_total",
    ):
        assert name in text, name
    assert 'pointsman_fallbacks_total{from_endpoint="e500@fake"}' in text


def test_refused_connection_on_a_dead_port_falls_back() -> None:
    dead = {"dead": {"base_url": f"http://127.0.0.1:{free_port()}/v1"}}
    endpoints = {"m@dead": "fake-model", "m@live": "fake-model#tokens=3"}
    with gateway_stack(
        endpoints, gateway_settings=SETTINGS, catalog_options={"extra_providers": dead}
    ) as stack:
        reply = stack.client().chat.completions.create(model="m@dead->m@live", messages=MESSAGES)  # type: ignore[arg-type]
        assert reply.model == "m@live"
