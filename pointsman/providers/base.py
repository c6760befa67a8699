"""The one async interface every provider API style implements, and the boundary where HTTP failures become
Pointsman errors.

Inside Pointsman a chat request is an OpenAI Chat Completions body (a dict) and a reply is an OpenAI
``chat.completion`` or a stream of ``chat.completion.chunk`` dicts; each adapter translates to and from its own
wire format. An adapter is small: ``send`` for one reply, ``stream`` for the chunks. It does no retries and no
fallbacks (the gateway's ``fallback`` module does, so there is exactly one retry layer) and it enforces only
the connect timeout; the first-token, idle and total timeouts are applied by the caller around it.

Every ``httpx`` exception and every error status is mapped here to an ``UpstreamError`` subclass naming the
endpoint, so nothing above this layer sees a library exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import functools
import json
import math
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from pointsman.errors import (
    MissingKeyError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)

__all__ = [
    "ChatBody",
    "Provider",
    "Timeouts",
    "Upstream",
    "decode_json",
    "drain_and_close",
    "map_transport_error",
    "parse_retry_after",
    "status_error",
]

ChatBody = dict[str, Any]

# Statuses that say "the request itself is wrong": passed through to the client rather than retried.
_CLIENT_STATUSES = frozenset({400, 404, 413, 422})
_DRAIN_S = 0.25


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where one endpoint is served: what the adapter needs to send a request, nothing more."""

    endpoint: str  # "model@provider", the name clients and metrics see
    base_url: str  # e.g. "https://api.openai.com/v1"
    model: str  # the provider's own model id
    api_key_env: str | None = None  # the environment variable holding the key (named in errors)
    api_key: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def require_key(self) -> str | None:
        """The key, or a MissingKeyError naming the variable when the endpoint needs one and it is unset."""
        if self.api_key_env and not self.api_key:
            raise MissingKeyError(
                f"no API key for {self.endpoint}: set the {self.api_key_env} environment variable "
                "(or remove the endpoint from the catalogue)"
            )
        return self.api_key


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Separate limits, in seconds. ``connect`` is applied by the HTTP pool; ``first_token`` (request sent to
    the first content token), ``idle`` (the longest silence between chunks once streaming) and ``total`` (the
    whole exchange) are applied by the caller around ``send``/``stream``."""

    connect_s: float = 5.0
    first_token_s: float = 30.0
    idle_s: float = 60.0
    total_s: float = 600.0

    def httpx_timeout(self) -> httpx.Timeout:
        return _httpx_timeout(self)


@functools.lru_cache(maxsize=64)
def _httpx_timeout(timeouts: Timeouts) -> httpx.Timeout:
    """One ``httpx.Timeout`` per distinct ``Timeouts`` (not one per request)."""
    return httpx.Timeout(timeouts.total_s, connect=timeouts.connect_s, pool=timeouts.connect_s)


class Provider(ABC):
    """One API style over a shared ``httpx.AsyncClient``. Subclasses set ``api_style`` and the capability flags
    and implement ``send`` and ``stream``."""

    api_style: ClassVar[str]
    supports_streaming: ClassVar[bool] = True
    supports_stream_usage: ClassVar[bool] = True  # reports token usage at the end of a stream
    supports_tools: ClassVar[bool] = True
    supports_images: ClassVar[bool] = True
    needs_max_tokens: ClassVar[bool] = False  # the wire format requires an explicit max_tokens

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    @abstractmethod
    async def send(self, upstream: Upstream, body: ChatBody, timeouts: Timeouts) -> dict[str, Any]:
        """Send a non-streaming request; return an OpenAI ``chat.completion`` dict (with ``usage``)."""

    @abstractmethod
    def stream(self, upstream: Upstream, body: ChatBody, timeouts: Timeouts) -> AsyncIterator[dict[str, Any]]:
        """Stream a request; yield OpenAI ``chat.completion.chunk`` dicts as they arrive. The last chunk
        carries ``usage`` when the provider reports it. Ending without the provider's end-of-stream marker
        raises ``UpstreamConnectionError``: a truncated stream is never passed off as complete."""


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _error_message(raw: bytes) -> str:
    """The provider's own error message when its body is an OpenAI or Anthropic error, else a short excerpt."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw[:300].decode("utf-8", "replace").strip() or "(empty body)"
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return str(payload)[:300]


def status_error(upstream: Upstream, status: int, body: bytes, headers: Mapping[str, str]) -> UpstreamError:
    """The Pointsman error for an error status from ``upstream``.

    408/409/429/5xx are retryable (``Retry-After`` kept); 400/404/413/422 are the request's fault and keep the
    upstream status for the client; 401/403 mean the configured key is wrong, which is the operator's to fix."""
    message = _error_message(body)
    if status in (401, 403):
        where = f" in {upstream.api_key_env}" if upstream.api_key_env else ""
        text = f"{upstream.endpoint} rejected the API key{where} (HTTP {status}: {message}); check the key"
    else:
        text = f"{upstream.endpoint} answered HTTP {status}: {message}"
    err = UpstreamStatusError(
        text,
        upstream_status=status,
        endpoint=upstream.endpoint,
        retry_after_s=parse_retry_after(headers.get("retry-after")),
    )
    if status in _CLIENT_STATUSES:
        err.status_code = status
        err.error_type = "invalid_request_error"
    elif status == 429:  # passed on with its Retry-After when no fallback answers
        err.status_code = 429
        err.error_type = "rate_limit_error"
    return err


def map_transport_error(upstream: Upstream, exc: httpx.HTTPError) -> UpstreamError:
    """An ``httpx`` transport failure as the matching ``UpstreamError``."""
    name = upstream.endpoint
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return UpstreamTimeoutError(f"connecting to {name} timed out ({exc!r})", endpoint=name)
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamTimeoutError(f"{name} timed out ({exc!r})", endpoint=name)
    if isinstance(exc, httpx.ConnectError):
        return UpstreamConnectionError(
            f"could not connect to {name} at {upstream.base_url}: {exc}", endpoint=name
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError | httpx.CloseError):
        return UpstreamConnectionError(
            f"the connection to {name} broke: {str(exc) or type(exc).__name__}", endpoint=name
        )
    if isinstance(exc, httpx.DecodingError):
        return UpstreamProtocolError(f"{name} sent a body that could not be decoded: {exc}", endpoint=name)
    return UpstreamConnectionError(f"request to {name} failed: {exc!r}", endpoint=name)


def decode_json(upstream: Upstream, raw: bytes | str, what: str) -> Any:
    """JSON from the upstream, or an UpstreamProtocolError that quotes the start of what arrived."""
    try:
        return json.loads(raw)
    except ValueError as exc:
        excerpt = raw[:120] if isinstance(raw, str) else raw[:120].decode("utf-8", "replace")
        raise UpstreamProtocolError(
            f"{upstream.endpoint} sent {what} that is not JSON: {excerpt!r}", endpoint=upstream.endpoint
        ) from exc


async def drain_and_close(resp: httpx.Response, rest: AsyncIterator[bytes] | None) -> None:
    """Close ``resp``. When the stream ended normally (``rest`` is its byte iterator), first read what is left
    — after ``[DONE]`` only the chunked terminator, normally in the same packet — so the connection goes back
    to the pool instead of being closed; give up after a moment."""
    if rest is not None and not resp.is_closed:
        with contextlib.suppress(httpx.HTTPError, TimeoutError):
            async with asyncio.timeout(_DRAIN_S):
                async for _ in rest:
                    pass
    await resp.aclose()
