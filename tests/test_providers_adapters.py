"""Provider adapters against the fake provider (a real HTTP server on loopback): replies, streams, usage,
and every failure mapped to its Pointsman error. Plus the Anthropic translation both ways."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pointsman.errors import (
    InvalidRequestError,
    MissingKeyError,
    UnknownNameError,
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from pointsman.gateway.testing import free_port
from pointsman.providers import Timeouts, Upstream, build_providers, provider_class
from pointsman.providers.anthropic import from_anthropic_reply, to_anthropic_request
from pointsman.providers.base import parse_retry_after, status_error
from pointsman.providers.fake import VOCAB, FakeConfig, FakeProviderServer, running_fake_provider
from pointsman.providers.transport import LeanTransport

pytestmark = pytest.mark.timeout(60)  # a hang fails fast instead of stalling the suite


STYLES = ["openai", "anthropic"]
BODY = {"model": "ignored", "messages": [{"role": "user", "content": "hello there"}]}


TRANSPORT = {"kind": "lean"}


@pytest.fixture(scope="module", autouse=True, params=["lean", "httpx"])
def transport_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test runs over the gateway's transport and over httpx's default one."""
    TRANSPORT["kind"] = request.param
    yield request.param


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=LeanTransport() if TRANSPORT["kind"] == "lean" else None)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    # In a thread of the test process. (It once ran as its own process because a request to the in-thread fake
    # was, rarely, never answered; the cause was in the fake's connection handling, fixed and checked by
    # tests/test_providers_fake.py and scripts/stress_fake_provider.py.)
    with running_fake_provider(FakeConfig(tokens=6)) as server:
        yield server


async def _send(style: str, upstream: Upstream, body: dict[str, Any] = BODY, **kw: Any) -> dict[str, Any]:
    async with _client() as client:
        return await build_providers(client)[style].send(upstream, body, Timeouts(**kw))


async def _stream(
    style: str, upstream: Upstream, body: dict[str, Any] = BODY, **kw: Any
) -> list[dict[str, Any]]:
    async with _client() as client:
        return [c async for c in build_providers(client)[style].stream(upstream, body, Timeouts(**kw))]


def _text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))


def up(fake: FakeProviderServer, script: str = "", **kw: Any) -> Upstream:
    return Upstream("m@fake", fake.base_url, "fake-model" + (f"#{script}" if script else ""), **kw)


@pytest.mark.parametrize("style", STYLES)
def test_send_returns_openai_reply_with_usage(fake: FakeProviderServer, style: str) -> None:
    reply = asyncio.run(_send(style, up(fake)))
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"] == "".join(VOCAB[:6])
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert reply["usage"]["completion_tokens"] == 6
    assert reply["usage"]["total_tokens"] == reply["usage"]["prompt_tokens"] + 6


@pytest.mark.parametrize("style", STYLES)
def test_stream_yields_chunks_then_usage(fake: FakeProviderServer, style: str) -> None:
    chunks = asyncio.run(_stream(style, up(fake)))
    assert _text(chunks) == "".join(VOCAB[:6])
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c.get("choices")]
    assert finishes[-1] == "stop"


@pytest.mark.parametrize("style", STYLES)
def test_max_tokens_gives_length_finish(fake: FakeProviderServer, style: str) -> None:
    reply = asyncio.run(_send(style, up(fake), {**BODY, "max_tokens": 3}))
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize("style", STYLES)
def test_split_events_mid_utf8_reassemble_exactly(fake: FakeProviderServer, style: str) -> None:
    chunks = asyncio.run(_stream(style, up(fake, "fault=split&tokens=11")))
    assert _text(chunks) == "".join(VOCAB[:11])
    reply = asyncio.run(_send(style, up(fake, "fault=split&tokens=11")))
    assert reply["choices"][0]["message"]["content"] == "".join(VOCAB[:11])


@pytest.mark.parametrize("style", STYLES)
def test_missing_usage_is_not_invented(fake: FakeProviderServer, style: str) -> None:
    chunks = asyncio.run(_stream(style, up(fake, "fault=no_usage")))
    assert all(c.get("usage") is None for c in chunks)
    assert _text(chunks) == "".join(VOCAB[:6])


@pytest.mark.parametrize("style", STYLES)
def test_huge_chunk_passes(fake: FakeProviderServer, style: str) -> None:
    chunks = asyncio.run(_stream(style, up(fake, "fault=huge_chunk&huge_bytes=3000000")))
    assert (
        max(len(c["choices"][0]["delta"].get("content") or "") for c in chunks if c.get("choices"))
        > 3_000_000
    )


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("script", "error", "retryable"),
    [
        ("fault=429&retry_after=2.5", UpstreamStatusError, True),
        ("fault=500", UpstreamStatusError, True),
        ("fault=503", UpstreamStatusError, True),
        ("fault=refuse", UpstreamConnectionError, True),
        ("fault=close_early", UpstreamConnectionError, True),
        ("fault=malformed", UpstreamProtocolError, True),
    ],
)
def test_stream_faults_map_to_errors(
    fake: FakeProviderServer, style: str, script: str, error: type[Exception], retryable: bool
) -> None:
    with pytest.raises(error) as info:
        asyncio.run(_stream(style, up(fake, script)))
    assert info.value.endpoint == "m@fake"  # type: ignore[attr-defined]
    assert info.value.retryable is retryable  # type: ignore[attr-defined]
    if "429" in script:
        assert info.value.retry_after_s == 2.5  # type: ignore[attr-defined]
        assert info.value.upstream_status == 429  # type: ignore[attr-defined]


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize(
    ("script", "error"),
    [
        ("fault=500", UpstreamStatusError),
        ("fault=refuse", UpstreamConnectionError),
        ("fault=close_early", UpstreamConnectionError),
        ("fault=malformed", UpstreamProtocolError),
    ],
)
def test_send_faults_map_to_errors(
    fake: FakeProviderServer, style: str, script: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        asyncio.run(_send(style, up(fake, script)))


def test_refused_connection_names_the_endpoint_and_url() -> None:
    dead = Upstream("m@dead", f"http://127.0.0.1:{free_port()}/v1", "x")
    with pytest.raises(UpstreamConnectionError, match=r"could not connect to m@dead at http://127\.0\.0\.1"):
        asyncio.run(_send("openai", dead))


def test_slow_first_byte_hits_the_http_timeout(fake: FakeProviderServer) -> None:
    with pytest.raises(UpstreamTimeoutError):
        asyncio.run(_send("openai", up(fake, "fault=slow_first_byte&delay_ms=2000"), total_s=0.2))


def test_missing_key_names_the_variable(fake: FakeProviderServer) -> None:
    with pytest.raises(MissingKeyError, match="set the FAKE_KEY_FOR_TEST environment variable"):
        asyncio.run(_send("openai", up(fake, api_key_env="FAKE_KEY_FOR_TEST")))


@pytest.mark.parametrize("style", STYLES)
def test_keys_are_sent_in_each_styles_header(style: str) -> None:
    with running_fake_provider(FakeConfig(require_key="sekret")) as server:
        good = Upstream("m@fake", server.base_url, "fake-model", "K", "sekret")
        assert asyncio.run(_send(style, good))["choices"]
        with pytest.raises(UpstreamStatusError, match=r"rejected the API key in K \(HTTP 401"):
            asyncio.run(_send(style, Upstream("m@fake", server.base_url, "fake-model", "K", "wrong")))


def test_client_errors_keep_their_status_and_are_not_retryable() -> None:
    target = Upstream("m@p", "http://x", "m")
    err = status_error(target, 400, b'{"error": {"message": "bad param"}}', {})
    assert (err.status_code, err.retryable, err.message) == (400, False, "m@p answered HTTP 400: bad param")
    assert status_error(target, 503, b"oops", {}).retryable is True
    assert status_error(target, 409, b"", {}).retryable is True


def test_retry_after_parsing() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


def test_unknown_api_style_lists_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'openai'"):
        provider_class("opneai")


def test_anthropic_request_translation() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
            {"role": "user", "content": "and this"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ],
        "stop": "END",
        "temperature": 0.2,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "user": "u1",
    }  # fmt: skip
    out = to_anthropic_request(body, "claude-x")
    assert out["system"] == "be brief"
    assert out["max_tokens"] == 4096
    assert [t["role"] for t in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
    }
    assert out["messages"][0]["content"][2] == {"type": "text", "text": "and this"}
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": {"x": 1}}]
    assert out["messages"][2]["content"][0]["type"] == "tool_result"
    assert out["stop_sequences"] == ["END"]
    assert out["tool_choice"] == {"type": "any"}
    assert out["tools"][0]["input_schema"] == {"type": "object"}
    assert out["metadata"] == {"user_id": "u1"}


def test_anthropic_request_rejects_unknown_parts() -> None:
    with pytest.raises(InvalidRequestError, match="input_audio"):
        to_anthropic_request({"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]}, "m")


def test_anthropic_reply_translation_with_tools_and_cache_usage() -> None:
    reply = {
        "id": "msg_1",
        "type": "message",
        "content": [
            {"type": "text", "text": "ok"},
            {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 2}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 5, "output_tokens": 7},
    }
    out = from_anthropic_reply(reply, "claude-x")
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] == "ok"
    assert json.loads(choice["message"]["tool_calls"][0]["function"]["arguments"]) == {"a": 2}
    assert out["usage"] == {"prompt_tokens": 15, "completion_tokens": 7, "total_tokens": 22}
