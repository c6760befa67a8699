"""Sending many chat requests for ``custom collect`` and ``custom judge``: the gateway's provider adapters and
its fallback engine (one candidate, so retries with backoff and ``Retry-After`` but never another model), a
concurrency limit, and a graceful stop.

A first Ctrl-C (or SIGTERM) stops new requests and waits for the ones in flight, so every answer already paid
for is stored; a second one abandons them (their in-flight marks tell the next run what was lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from pointsman.catalog import Catalog, Endpoint
from pointsman.errors import DataError, PointsmanError
from pointsman.providers.base import Timeouts, Upstream
from pointsman.tokens import count_message_tokens, estimate_tokens

__all__ = ["Caller", "Reply", "reply_cost", "resolve_endpoints", "run_interruptibly", "run_pool"]

T = TypeVar("T")


@dataclass(frozen=True)
class Reply:
    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    usage_estimated: bool  # the provider reported no usage; tokens were estimated
    latency_s: float
    finish: str | None


def resolve_endpoints(catalog: Catalog, names: Sequence[str]) -> dict[str, Endpoint]:
    """``model@provider`` names → {model: Endpoint}; one endpoint per model (the router scores models)."""
    out: dict[str, Endpoint] = {}
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if "@" not in name:
            raise DataError(
                f"{name!r} is not an endpoint; give model@provider (list them with 'pointsman endpoints')",
                field="models",
            )
        endpoint = catalog.endpoint(name)
        if endpoint.model in out:
            raise DataError(
                f"two endpoints for model {endpoint.model!r} ({out[endpoint.model].name}, {name}); a custom router "
                "learns one quality per model, so give each model once",
                field="models",
            )
        out[endpoint.model] = endpoint
    if not out:
        raise DataError("no endpoints given; pass --models m1@p1,m2@p2", field="models")
    return out


def reply_cost(
    endpoint: Endpoint, body: dict[str, Any], reply: dict[str, Any]
) -> tuple[int, int, Decimal, bool]:
    """(input tokens, output tokens, exact list-price cost, estimated?) of one reply."""
    usage = reply.get("usage") or {}
    text = _reply_text(reply)
    if isinstance(usage.get("prompt_tokens"), int) and isinstance(usage.get("completion_tokens"), int):
        tin, tout, estimated = int(usage["prompt_tokens"]), int(usage["completion_tokens"]), False
    else:
        tin, tout, estimated = count_message_tokens(body["messages"]), estimate_tokens(text), True
    return tin, tout, endpoint.cost_usd(tin, tout), estimated


def _reply_text(reply: dict[str, Any]) -> str:
    choices = reply.get("choices") or []
    if not choices:
        return ""
    message = choices[0].get("message") or {}
    content = message.get("content")
    return content if isinstance(content, str) else ""


class Caller:
    """One HTTP pool, the provider adapters and a one-candidate fallback engine. Use ``async with``."""

    def __init__(self, *, retries: int = 3, timeouts: Timeouts | None = None, concurrency: int = 8) -> None:
        self.retries = retries
        self.timeouts = timeouts or Timeouts(first_token_s=120.0, total_s=600.0)
        self.concurrency = concurrency
        self._upstreams: dict[str, Upstream] = {}

    async def __aenter__(self) -> Caller:
        import httpx

        from pointsman.gateway.breaker import CircuitBreaker
        from pointsman.gateway.fallback import FallbackEngine, RetryPolicy
        from pointsman.gateway.metrics import GatewayMetrics
        from pointsman.providers.registry import build_providers

        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        self.client = httpx.AsyncClient(timeout=self.timeouts.httpx_timeout(), limits=limits, trust_env=False)
        self.providers = build_providers(self.client)
        # A breaker that never opens: one slow model must not stop the others' collection; retries are per call.
        self.engine = FallbackEngine(
            breaker=CircuitBreaker(failure_threshold=1_000_000, cooldown_s=0.0),
            policy=RetryPolicy(retries=self.retries, max_retry_after_s=120.0),
            timeouts=self.timeouts,
            metrics=GatewayMetrics(),
            depth=1,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    def upstream(self, endpoint: Endpoint) -> Upstream:
        found = self._upstreams.get(endpoint.name)
        if found is None:
            key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
            found = Upstream(
                endpoint.name, endpoint.base_url, endpoint.upstream_model, endpoint.api_key_env, key
            )
            found.require_key()  # a missing key is said before anything is sent
            self._upstreams[endpoint.name] = found
        return found

    async def chat(self, endpoint: Endpoint, body: dict[str, Any]) -> Reply:
        """One reply from ``endpoint`` (retried on retryable failures); raises ``PointsmanError`` otherwise."""
        from pointsman.gateway.fallback import Candidate

        candidate = Candidate(endpoint.name, self.upstream(endpoint), self.providers[endpoint.api_style])
        start = time.perf_counter()
        _, reply, _ = await self.engine.send([candidate], body)
        latency = time.perf_counter() - start
        tin, tout, cost, estimated = reply_cost(endpoint, body, reply)
        finish = None
        choices = reply.get("choices") or []
        if choices:
            finish = choices[0].get("finish_reason")
        return Reply(_reply_text(reply), tin, tout, cost, estimated, latency, finish)


async def run_pool(
    items: Sequence[T],
    work: Callable[[T], Awaitable[None]],
    *,
    concurrency: int,
    stop: asyncio.Event,
) -> int:
    """Run ``work`` on each item, at most ``concurrency`` at a time, until done or ``stop`` is set (items in
    flight finish; the rest are not started). Returns how many were started."""
    queue = list(reversed(items))
    started = 0

    async def worker() -> None:
        nonlocal started
        while queue and not stop.is_set():
            item = queue.pop()
            started += 1
            await work(item)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return started


def run_interruptibly(
    main: Callable[[asyncio.Event], Coroutine[Any, Any, T]], *, on_stop: Callable[[], None]
) -> T:
    """Run ``main(stop)`` in a new event loop. The first SIGINT/SIGTERM sets ``stop`` (and calls ``on_stop``);
    the second cancels ``main`` (raising ``KeyboardInterrupt``)."""

    async def runner() -> T:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        task = asyncio.current_task()
        assert task is not None

        def handle() -> None:
            if stop.is_set():
                task.cancel()
                return
            stop.set()
            on_stop()

        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, handle)
                installed.append(sig)
        try:
            return await main(stop)
        except asyncio.CancelledError:
            raise KeyboardInterrupt from None
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    return asyncio.run(runner())


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, PointsmanError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
