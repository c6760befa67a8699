"""OpenAI-compatible Chat Completions: OpenAI, Together, Groq, Fireworks, DeepInfra, Mistral, OpenRouter,
Ollama, vLLM, llama.cpp server and anything else that speaks ``POST {base_url}/chat/completions``.

The body goes through unchanged except ``model`` (the provider's id) and, for streams, ``stream_options`` asking
for usage so the exact cost can be settled. Streamed chunks are decoded incrementally and yielded one by one.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from pointsman import __version__
from pointsman.errors import (
    UpstreamConnectionError,
    UpstreamError,
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

__all__ = ["OpenAIProvider"]

_USER_AGENT = f"pointsman/{__version__}"


def _headers(upstream: Upstream) -> dict[str, str]:
    headers = {"content-type": "application/json", "user-agent": _USER_AGENT, **upstream.headers}
    key = upstream.require_key()
    if key:
        headers["authorization"] = f"Bearer {key}"
    return headers


def _request(upstream: Upstream, payload: dict[str, Any], timeouts: Timeouts) -> httpx.Request:
    """The request to ``{base_url}/chat/completions``, built directly rather than by ``client.build_request``,
    which merges client defaults, cookies and query parameters the gateway never sets (it cost more than the
    rest of sending). The URL is parsed once per base URL and the timeouts once per setting."""
    return httpx.Request(
        "POST",
        _chat_url(upstream.base_url),
        headers=_headers(upstream),
        content=json.dumps(payload).encode(),
        extensions={"timeout": _timeout_extension(timeouts)},
    )


@functools.lru_cache(maxsize=1024)
def _chat_url(base_url: str) -> httpx.URL:
    return httpx.URL(base_url.rstrip("/") + "/chat/completions")


@functools.lru_cache(maxsize=64)
def _timeout_extension(timeouts: Timeouts) -> dict[str, float | None]:
    return timeouts.httpx_timeout().as_dict()


def _stream_error(upstream: Upstream, payload: dict[str, Any]) -> UpstreamError:
    """An ``{"error": ...}`` object sent inside a stream (how OpenAI-compatible servers fail mid-stream)."""
    err = payload.get("error")
    message = err.get("message") if isinstance(err, dict) else err
    code = err.get("code") if isinstance(err, dict) else None
    status = code if isinstance(code, int) and 400 <= code < 600 else 502
    return UpstreamStatusError(
        f"{upstream.endpoint} failed mid-stream: {message}",
        upstream_status=status,
        endpoint=upstream.endpoint,
    )


class OpenAIProvider(Provider):
    api_style = "openai"

    async def send(self, upstream: Upstream, body: ChatBody, timeouts: Timeouts) -> dict[str, Any]:
        payload = {**body, "model": upstream.model, "stream": False}
        payload.pop("stream_options", None)
        request = _request(upstream, payload, timeouts)
        try:
            resp = await self.client.send(request)
        except httpx.HTTPError as exc:
            raise map_transport_error(upstream, exc) from exc
        if resp.status_code >= 400:
            raise status_error(upstream, resp.status_code, resp.content, resp.headers)
        reply = decode_json(upstream, resp.content, "a reply")
        if not isinstance(reply, dict) or not isinstance(reply.get("choices"), list):
            raise UpstreamProtocolError(
                f"{upstream.endpoint} sent a reply without 'choices'", endpoint=upstream.endpoint
            )
        return reply

    async def stream(
        self, upstream: Upstream, body: ChatBody, timeouts: Timeouts
    ) -> AsyncIterator[dict[str, Any]]:
        payload = {**body, "model": upstream.model, "stream": True}
        if self.supports_stream_usage:
            payload["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        request = _request(upstream, payload, timeouts)
        try:
            resp = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise map_transport_error(upstream, exc) from exc
        ended = False  # set when the stream finished normally: then the rest of the body is drained
        chunks: AsyncIterator[bytes] | None = None
        try:
            if resp.status_code >= 400:
                raise status_error(upstream, resp.status_code, await resp.aread(), resp.headers)
            decoder = SSEDecoder()
            chunks = resp.aiter_bytes()
            async for raw in chunks:
                for event in decoder.feed(raw):
                    if event.data == "[DONE]":
                        ended = True
                        return
                    chunk = decode_json(upstream, event.data, "a stream event")
                    if not isinstance(chunk, dict):
                        raise UpstreamProtocolError(
                            f"{upstream.endpoint} sent a stream event that is not an object",
                            endpoint=upstream.endpoint,
                        )
                    if "error" in chunk:
                        raise _stream_error(upstream, chunk)
                    yield chunk
            for event in decoder.close():
                if event.data == "[DONE]":
                    return
            raise UpstreamConnectionError(
                f"{upstream.endpoint} closed the stream before [DONE]; the answer may be truncated",
                endpoint=upstream.endpoint,
            )
        except httpx.HTTPError as exc:
            raise map_transport_error(upstream, exc) from exc
        finally:
            await drain_and_close(resp, chunks if ended else None)
