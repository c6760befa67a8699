"""Anthropic Messages (``POST {base_url}/messages``), translated to and from OpenAI Chat Completions.

Requests: system messages become ``system``; text and image parts become content blocks; assistant
``tool_calls`` become ``tool_use`` blocks and ``tool`` messages ``tool_result`` blocks; consecutive messages of
one role are merged (the Messages API wants turns to alternate); ``stop`` becomes ``stop_sequences``; tools and
``tool_choice`` are renamed. Replies and stream events come back as ``chat.completion`` / ``chat.completion.chunk``
with ``finish_reason`` and ``usage`` (cache reads and writes counted as prompt tokens) mapped.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from pointsman.errors import (
    InvalidRequestError,
    UpstreamConnectionError,
    UpstreamProtocolError,
    UpstreamStatusError,
)
from pointsman.providers.base import (
    ChatBody,
    Provider,
    Timeouts,
    Upstream,
    decode_json,
    drain_and_close,
    map_transport_error,
    status_error,
)
from pointsman.providers.sse import SSEDecoder

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AnthropicProvider",
    "from_anthropic_reply",
    "from_anthropic_usage",
    "to_anthropic_request",
]

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # the Messages API requires max_tokens; used when the client sent none

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}

# Anthropic error types that may succeed on another try (overloaded, rate limited, internal).
_RETRYABLE_STREAM_ERRORS = {"overloaded_error": 529, "rate_limit_error": 429, "api_error": 500}


def _image_block(url: str) -> dict[str, Any]:
    if url.startswith("data:"):
        head, _, data = url.partition(",")
        media_type = head[5:].split(";")[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _content_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            blocks.append(_image_block(image.get("url", "") if isinstance(image, dict) else str(image)))
        else:
            raise InvalidRequestError(
                f"content part type {kind!r} cannot be sent to an Anthropic endpoint; use text or image_url",
                param="messages",
            )
    return blocks


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if p.get("type") == "text")


def to_anthropic_request(body: ChatBody, model: str) -> dict[str, Any]:
    """An OpenAI Chat Completions body as an Anthropic Messages body for ``model``."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for msg in body.get("messages", []):
        role = msg.get("role")
        if role in ("system", "developer"):
            system.append(_text_of(msg.get("content")))
        elif role == "user":
            add("user", _content_blocks(msg.get("content")))
        elif role == "assistant":
            blocks = _content_blocks(msg.get("content"))
            for call in msg.get("tool_calls") or []:
                fn = call.get("function", {})
                try:
                    arguments = json.loads(fn.get("arguments") or "{}")
                except ValueError as exc:
                    raise InvalidRequestError(
                        f"tool call {call.get('id')!r} has arguments that are not JSON", param="messages"
                    ) from exc
                blocks.append(
                    {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": arguments}
                )
            add("assistant", blocks)
        elif role == "tool":
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": msg.get("tool_call_id"),
                        "content": _text_of(msg.get("content")),
                    }
                ],
            )
        else:
            raise InvalidRequestError(f"message role {role!r} is not supported", param="messages")

    out: dict[str, Any] = {
        "model": model,
        "messages": turns,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS,
    }
    if system:
        out["system"] = "\n\n".join(system)
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            out[key] = body[key]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        out["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for t in body["tools"]
        ]
    choice = body.get("tool_choice")
    if choice == "auto":
        out["tool_choice"] = {"type": "auto"}
    elif choice == "required":
        out["tool_choice"] = {"type": "any"}
    elif choice == "none":
        out["tool_choice"] = {"type": "none"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        out["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    if body.get("user"):
        out["metadata"] = {"user_id": body["user"]}
    return out


def from_anthropic_usage(usage: dict[str, Any] | None, prompt_tokens: int | None = None) -> dict[str, int]:
    """Anthropic usage as OpenAI usage; cache writes and reads are input the provider charges for."""
    usage = usage or {}
    prompt = (
        prompt_tokens
        if prompt_tokens is not None
        else int(usage.get("input_tokens") or 0)
        + int(usage.get("cache_creation_input_tokens") or 0)
        + int(usage.get("cache_read_input_tokens") or 0)
    )
    completion = int(usage.get("output_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def from_anthropic_reply(reply: dict[str, Any], model: str) -> dict[str, Any]:
    """An Anthropic Messages reply as an OpenAI ``chat.completion``."""
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in reply.get("content") or []:
        if block.get("type") == "text":
            text.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": json.dumps(block.get("input") or {}),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": reply.get("id", ""),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": FINISH_REASONS.get(reply.get("stop_reason") or "", "stop"),
            }
        ],
        **({"usage": from_anthropic_usage(reply["usage"])} if reply.get("usage") else {}),
    }


def _headers(upstream: Upstream) -> dict[str, str]:
    headers = {"content-type": "application/json", "anthropic-version": ANTHROPIC_VERSION, **upstream.headers}
    key = upstream.require_key()
    if key:
        headers["x-api-key"] = key
    return headers


class _StreamTranslator:
    """Anthropic stream events in, OpenAI chunks out; one per stream."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.id = ""
        self.created = int(time.time())
        self.prompt_tokens: int | None = None
        self.usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}  # content block index -> tool_calls index
        self.finish_reason: str | None = None
        self.done = False

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.upstream.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def translate(self, kind: str | None, data: dict[str, Any]) -> list[dict[str, Any]]:
        kind = kind or data.get("type")
        if kind == "message_start":
            message = data.get("message") or {}
            self.id = message.get("id", "")
            self.usage = dict(message.get("usage") or {})
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = self.tool_index.setdefault(int(data.get("index", 0)), len(self.tool_index))
                call = {"index": index, "id": block.get("id"), "type": "function"}
                call["function"] = {"name": block.get("name"), "arguments": ""}
                return [self.chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self.chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self.chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(int(data.get("index", 0)), 0)
                call = {"index": index, "function": {"arguments": delta.get("partial_json", "")}}
                return [self.chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            stop = (data.get("delta") or {}).get("stop_reason")
            if stop:
                self.finish_reason = FINISH_REASONS.get(stop, "stop")
                return [self.chunk({}, self.finish_reason)]
            return []
        if kind == "message_stop":
            self.done = True
            if "output_tokens" not in self.usage:
                return []  # no usage reported: the gateway estimates it
            final = self.chunk({})
            final["choices"] = []
            final["usage"] = from_anthropic_usage(self.usage)
            return [final]
        if kind == "error":
            err = data.get("error") or {}
            status = _RETRYABLE_STREAM_ERRORS.get(err.get("type", ""), 400)
            raise UpstreamStatusError(
                f"{self.upstream.endpoint} failed mid-stream: {err.get('type')}: {err.get('message')}",
                upstream_status=status,
                endpoint=self.upstream.endpoint,
            )
        return []  # ping and event types added later


class AnthropicProvider(Provider):
    api_style = "anthropic"
    needs_max_tokens = True

    async def send(self, upstream: Upstream, body: ChatBody, timeouts: Timeouts) -> dict[str, Any]:
        payload = to_anthropic_request(body, upstream.model)
        try:
            resp = await self.client.post(
                upstream.base_url.rstrip("/") + "/messages",
                content=json.dumps(payload).encode(),
                headers=_headers(upstream),
                timeout=timeouts.httpx_timeout(),
            )
        except httpx.HTTPError as exc:
            raise map_transport_error(upstream, exc) from exc
        if resp.status_code >= 400:
            raise status_error(upstream, resp.status_code, resp.content, resp.headers)
        reply = decode_json(upstream, resp.content, "a reply")
        if not isinstance(reply, dict) or reply.get("type") != "message":
            raise UpstreamProtocolError(
                f"{upstream.endpoint} sent a reply that is not an Anthropic message",
                endpoint=upstream.endpoint,
            )
        return from_anthropic_reply(reply, upstream.model)

    async def stream(
        self, upstream: Upstream, body: ChatBody, timeouts: Timeouts
    ) -> AsyncIterator[dict[str, Any]]:
        payload = {**to_anthropic_request(body, upstream.model), "stream": True}
        request = self.client.build_request(
            "POST",
            upstream.base_url.rstrip("/") + "/messages",
            content=json.dumps(payload).encode(),
            headers=_headers(upstream),
            timeout=timeouts.httpx_timeout(),
        )
        try:
            resp = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise map_transport_error(upstream, exc) from exc
        translator = _StreamTranslator(upstream)
        ended = False  # set when the stream finished normally: then the rest of the body is drained
        chunks: AsyncIterator[bytes] | None = None
        try:
            if resp.status_code >= 400:
                raise status_error(upstream, resp.status_code, await resp.aread(), resp.headers)
            decoder = SSEDecoder()
            chunks = resp.aiter_bytes()
            async for raw in chunks:
                for event in decoder.feed(raw):
                    data = decode_json(upstream, event.data, "a stream event")
                    if not isinstance(data, dict):
                        raise UpstreamProtocolError(
                            f"{upstream.endpoint} sent a stream event that is not an object",
                            endpoint=upstream.endpoint,
                        )
                    for chunk in translator.translate(event.event, data):
                        yield chunk
                    if translator.done:
                        ended = True
                        return
            raise UpstreamConnectionError(
                f"{upstream.endpoint} closed the stream before message_stop; the answer may be truncated",
                endpoint=upstream.endpoint,
            )
        except httpx.HTTPError as exc:
            raise map_transport_error(upstream, exc) from exc
        finally:
            await drain_and_close(resp, chunks if ended else None)
