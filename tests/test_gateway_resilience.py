"""Through real servers: the circuit breaker opens, cools down, probes and recovers; secrets never reach the
logs; the Anthropic stream translator handles tool calls and error events."""

from __future__ import annotations

import logging
import time

import openai
import pytest
from _gateway_stack import gateway_stack

from pointsman.errors import UpstreamStatusError
from pointsman.gateway.billing import OpenAccessBilling
from pointsman.gateway.settings import GatewaySettings
from pointsman.providers.anthropic import _StreamTranslator
from pointsman.providers.base import Upstream

MESSAGES = [{"role": "user", "content": "hi"}]


def test_breaker_opens_cools_down_and_recovers_end_to_end() -> None:
    # fails its first 3 requests, then answers: 2 failures open the breaker, the probe after the cooldown
    # fails once more, the next probe succeeds and closes it.
    script = "fake-model#fault=500&fail_first=3"
    settings = GatewaySettings(retries=0, breaker_failures=2, breaker_cooldown_s=1.0, backoff_base_s=0.001)
    endpoints = {"m@flaky": script, "m@steady": "fake-model#tokens=2"}
    with gateway_stack(endpoints, gateway_settings=settings) as stack:
        fake, client = stack.fake, stack.client()

        def ask() -> str:
            return client.chat.completions.create(model="m@flaky->m@steady", messages=MESSAGES).model  # type: ignore[arg-type]

        assert [ask(), ask()] == ["m@steady", "m@steady"]
        assert fake.stats[script] == 2
        assert ask() == "m@steady" and fake.stats[script] == 2, "open: the flaky endpoint is skipped"
        assert "m@flaky" in stack.cooling_down()
        time.sleep(1.05)
        assert ask() == "m@steady" and fake.stats[script] == 3, "half-open: one probe, which fails"
        assert ask() == "m@steady" and fake.stats[script] == 3, "the failed probe reopened it"
        time.sleep(1.05)
        assert ask() == "m@flaky" and fake.stats[script] == 4, "the next probe succeeds"
        assert ask() == "m@flaky", "closed again"


def test_prompts_and_keys_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    secret_prompt, secret_key = "SECRET-PROMPT-4242", "sk-SECRET-KEY-4242"
    endpoints = {"m@p": "fake-model#tokens=3", "m@broken": "fake-model#fault=close_early&after=1"}
    with (
        gateway_stack(endpoints, gateway_settings=GatewaySettings()) as stack,
        caplog.at_level(logging.DEBUG),
    ):
        client = stack.client(api_key=secret_key)
        messages = [{"role": "user", "content": secret_prompt}]
        client.chat.completions.create(model="m@p", messages=messages)  # type: ignore[arg-type]
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="m@broken", messages=messages, stream=True))  # type: ignore[arg-type]
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="nope@p", messages=messages)  # type: ignore[arg-type]
    assert caplog.records, "the failure above is logged (without secrets)"
    assert secret_prompt not in caplog.text and secret_key not in caplog.text


def test_anthropic_stream_events_translate_tool_calls_usage_and_errors() -> None:
    t = _StreamTranslator(Upstream("c@anthropic", "http://x", "claude"))
    events = [
        ("message_start", {"message": {"id": "msg_1", "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        ("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "Let me check."}}),
        (
            "content_block_start",
            {"index": 1, "content_block": {"type": "tool_use", "id": "tu_1", "name": "lookup"}},
        ),
        (
            "content_block_delta",
            {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"q": '}},
        ),
        ("content_block_delta", {"index": 1, "delta": {"type": "input_json_delta", "partial_json": '"x"}'}}),
        ("ping", {}),
        ("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}}),
        ("message_stop", {}),
    ]
    chunks = [c for kind, data in events for c in t.translate(kind, data)]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"content": "Let me check."}
    assert deltas[2]["tool_calls"][0] == {
        "index": 0, "id": "tu_1", "type": "function", "function": {"name": "lookup", "arguments": ""},
    }  # fmt: skip
    arguments = "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[3:5])
    assert arguments == '{"q": "x"}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21}
    assert t.done and {c["id"] for c in chunks} == {"msg_1"}

    overloaded = _StreamTranslator(Upstream("c@anthropic", "http://x", "claude"))
    with pytest.raises(UpstreamStatusError, match="overloaded_error") as info:
        overloaded.translate("error", {"error": {"type": "overloaded_error", "message": "busy"}})
    assert info.value.retryable


def test_answer_without_max_tokens_is_capped_at_what_was_reserved() -> None:
    settings = GatewaySettings(default_max_output_tokens=3)
    billing = OpenAccessBilling()
    with gateway_stack({"m@p": "fake-model#tokens=10"}, gateway_settings=settings, billing=billing) as stack:
        client = stack.client()
        capped = client.chat.completions.create(model="m@p", messages=MESSAGES)  # type: ignore[arg-type]
        asked = client.chat.completions.create(model="m@p", messages=MESSAGES, max_tokens=7)  # type: ignore[arg-type]
    assert capped.usage is not None and capped.usage.completion_tokens == 3
    assert capped.choices[0].finish_reason == "length"
    assert asked.usage is not None and asked.usage.completion_tokens == 7
    assert [h.max_output_tokens for h in billing.reserved] == [3, 7]
