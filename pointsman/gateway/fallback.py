"""Walk the ranked endpoints until one answers: retries with backoff, fallbacks, timeouts, circuit breaking.

This is the gateway's only retry layer (the provider adapters and HTTP client never retry). For each
candidate, in rank order, up to ``depth`` candidates:

1. skip it while its circuit breaker is open;
2. try it up to ``1 + retries`` times on retryable failures (connection errors, timeouts, 408/409/429/5xx),
   sleeping ``min(backoff_max_s, backoff_base_s·2^k)`` scaled by a random factor in [0.5, 1] between tries,
   or the upstream's ``Retry-After`` when that is longer; a ``Retry-After`` beyond ``max_retry_after_s``
   moves on at once instead of waiting;
3. on a non-retryable failure (the request itself is wrong: 400/404/413/422) stop and report it.

A stream commits to an endpoint when its first token arrives (content, a tool call, or a finish reason);
chunks before that are held back, so a failure before the first token falls back invisibly. After it, the
stream is the client's: ``StreamSession.rest`` raises on failure and the chat route ends the stream with an
error event. Timeouts: ``connect`` in the HTTP pool, ``first_token`` from the attempt's start, ``idle`` between
chunks afterwards, ``total`` over the attempt.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pointsman.errors import (
    MissingKeyError,
    PointsmanError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from pointsman.gateway.breaker import CircuitBreaker
from pointsman.gateway.metrics import GatewayMetrics
from pointsman.providers.base import ChatBody, Provider, Timeouts, Upstream

__all__ = ["Attempt", "Candidate", "FallbackEngine", "RetryPolicy", "StreamSession", "has_token"]


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 1
    backoff_base_s: float = 0.25
    backoff_max_s: float = 8.0
    max_retry_after_s: float = 30.0

    def delay(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float | None:
        """Seconds to wait before retry number ``retry`` (0-based); None means: do not wait, move on."""
        if retry_after_s is not None and retry_after_s > self.max_retry_after_s:
            return None
        backoff = min(self.backoff_max_s, self.backoff_base_s * 2**retry) * rng.uniform(0.5, 1.0)
        return max(backoff, retry_after_s or 0.0)


@dataclass(frozen=True)
class Candidate:
    """One ranked endpoint, ready to call."""

    endpoint: str
    upstream: Upstream
    provider: Provider


@dataclass
class Attempt:
    """What happened to one try (or one skip) of one endpoint; shown with ``x-pointsman-explain``."""

    endpoint: str
    outcome: str  # "ok", "skipped: ...", or the error code
    error: str | None = None
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "outcome": self.outcome,
            "error": self.error,
            "elapsed_ms": self.elapsed_ms,
        }


def has_token(chunk: dict[str, Any]) -> bool:
    """Does this chunk carry something the client would see as output (or the end of it)?"""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if (
            delta.get("content")
            or delta.get("tool_calls")
            or delta.get("refusal")
            or choice.get("finish_reason")
        ):
            return True
    return False


@dataclass
class StreamSession:
    """A stream committed to ``candidate``: ``head`` holds the chunks up to and including the first token;
    ``rest()`` yields the others, raising ``UpstreamError`` on failure or timeout."""

    candidate: Candidate
    head: list[dict[str, Any]]
    attempts: list[Attempt]
    _gen: AsyncIterator[dict[str, Any]] | None
    _timeouts: Timeouts
    _deadline: float
    first_token_s: float = 0.0

    async def rest(self) -> AsyncIterator[dict[str, Any]]:
        gen = self._gen
        if gen is None:
            return
        task = asyncio.current_task()
        assert task is not None, "a stream is read inside a task"
        clock = _StreamClock(task, self._timeouts.idle_s, self._deadline)
        try:
            while True:
                clock.waiting()
                try:
                    chunk = await anext(gen)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    expired = clock.expired()
                    if expired is None:
                        raise
                    raise UpstreamTimeoutError(
                        self._timeout_message(expired), endpoint=self.candidate.endpoint
                    ) from None
                finally:
                    clock.idle()
                yield chunk
        finally:
            clock.stop()
            await self.aclose()

    def _timeout_message(self, which: str) -> str:
        name = self.candidate.endpoint
        if which == "total":
            return f"{name} exceeded the total timeout of {self._timeouts.total_s:g}s"
        return f"{name} sent nothing for {self._timeouts.idle_s:g}s mid-stream (idle timeout)"

    async def aclose(self) -> None:
        gen, self._gen = self._gen, None
        if gen is not None and hasattr(gen, "aclose"):
            await gen.aclose()


class _StreamClock:
    """The idle and total timeouts of a stream's rest, kept by one timer for the whole stream rather than an
    ``asyncio.timeout`` per chunk (one costs ~8 µs on uvloop: a timer armed and cancelled per chunk, several percent
    of the gateway's CPU per stream). Each chunk only notes when the wait for it began; the timer, when it fires,
    re-arms itself for the current wait's limit, or cancels the task if the wait has run past it. Only a wait
    for the upstream is timed: time the consumer spends writing to a slow client is not the upstream's silence.
    """

    __slots__ = ("_deadline", "_expired", "_handle", "_idle_s", "_loop", "_started", "_task", "_waiting")

    def __init__(self, task: asyncio.Task[Any], idle_s: float, deadline: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = task
        self._idle_s = idle_s
        self._deadline = deadline
        self._started = self._loop.time()
        self._waiting = False
        self._expired: str | None = None  # "idle" or "total" once the timer cancelled the task
        self._handle: asyncio.Handle = self._loop.call_at(self._limit(), self._check)

    def _limit(self) -> float:
        return min(self._started + self._idle_s, self._deadline)

    def waiting(self) -> None:
        self._started = self._loop.time()
        self._waiting = True
        if self._started >= self._deadline:  # past the total: expire as soon as this wait suspends
            self._handle.cancel()
            self._handle = self._loop.call_soon(self._check)

    def idle(self) -> None:
        self._waiting = False

    def _check(self) -> None:
        now = self._loop.time()
        limit = self._limit()
        if not self._waiting:  # the consumer is busy: check again once a wait could have run out
            self._handle = self._loop.call_at(now + self._idle_s, self._check)
        elif now < limit:
            self._handle = self._loop.call_at(limit, self._check)
        else:
            self._expired = "total" if limit >= self._deadline else "idle"
            self._task.cancel()

    def expired(self) -> str | None:
        """After a ``CancelledError``: "idle" or "total" if it was this clock's cancel and nobody else's (then
        the cancel is taken back), else None."""
        which, self._expired = self._expired, None
        if which is None or self._task.uncancel() > 0:
            return None
        return which

    def stop(self) -> None:
        self._handle.cancel()
        if self._expired is not None:  # fired as the stream ended: take the cancel back
            self._expired = None
            self._task.uncancel()


class FallbackEngine:
    """Runs one request against ranked candidates. Shared by all requests of one app."""

    def __init__(
        self,
        *,
        breaker: CircuitBreaker,
        policy: RetryPolicy,
        timeouts: Timeouts,
        metrics: GatewayMetrics,
        depth: int = 3,
        rng: random.Random | None = None,
    ) -> None:
        assert depth >= 1, "fallback depth must be at least 1"
        self.breaker = breaker
        self.policy = policy
        self.timeouts = timeouts
        self.metrics = metrics
        self.depth = depth
        self.rng = rng or random.Random()

    async def send(
        self, candidates: Sequence[Candidate], body: ChatBody
    ) -> tuple[Candidate, dict[str, Any], list[Attempt]]:
        """One non-streaming reply from the first candidate that gives one."""
        result: list[Any] = []

        async def once(c: Candidate) -> None:
            try:
                async with asyncio.timeout(self.timeouts.total_s):
                    result.append(await c.provider.send(c.upstream, body, self.timeouts))
            except TimeoutError as exc:
                raise UpstreamTimeoutError(
                    f"{c.endpoint} did not reply within the total timeout of {self.timeouts.total_s:g}s",
                    endpoint=c.endpoint,
                ) from exc

        candidate, attempts = await self._walk(candidates, once, what="a reply")
        return candidate, result[-1], attempts

    async def open_stream(self, candidates: Sequence[Candidate], body: ChatBody) -> StreamSession:
        """Open a stream on the first candidate that produces a first token."""
        opened: list[StreamSession] = []
        loop = asyncio.get_running_loop()

        async def once(c: Candidate) -> None:
            start = loop.time()
            deadline = start + self.timeouts.total_s
            first_limit = min(start + self.timeouts.first_token_s, deadline)
            gen = c.provider.stream(c.upstream, body, self.timeouts)
            head: list[dict[str, Any]] = []
            try:
                while True:
                    async with asyncio.timeout_at(first_limit):
                        chunk = await anext(gen)
                    head.append(chunk)
                    if has_token(chunk):
                        break
            except StopAsyncIteration:
                gen = None  # type: ignore[assignment]  # ended before any token: an empty, complete answer
            except TimeoutError as exc:
                await gen.aclose()  # type: ignore[attr-defined]
                raise UpstreamTimeoutError(
                    f"{c.endpoint} sent no first token within {first_limit - start:g}s (first-token timeout)",
                    endpoint=c.endpoint,
                ) from exc
            except BaseException:
                await gen.aclose()  # type: ignore[attr-defined]
                raise
            opened.append(StreamSession(c, head, [], gen, self.timeouts, deadline, loop.time() - start))

        _, attempts = await self._walk(candidates, once, what="a first token")
        session = opened[-1]
        session.attempts = attempts
        return session

    def stream_failed(self, session: StreamSession, exc: UpstreamError) -> None:
        """Count a failure after the first token against the endpoint (it is not retried: output was sent)."""
        name = session.candidate.endpoint
        self.breaker.failure(name)
        self.metrics.stream_errors.labels(name).inc()

    async def _walk(
        self, candidates: Sequence[Candidate], once: Callable[[Candidate], Awaitable[None]], *, what: str
    ) -> tuple[Candidate, list[Attempt]]:
        attempts: list[Attempt] = []
        errors: list[PointsmanError] = []
        tried = 0
        for candidate in candidates:
            if tried >= self.depth:
                break
            name = candidate.endpoint
            if not self.breaker.allow(name):
                attempts.append(Attempt(name, "skipped: cooling down after repeated failures"))
                continue
            tried += 1
            if tried > 1:
                self.metrics.fallbacks.labels(attempts[-1].endpoint if attempts else name).inc()
            for retry in range(self.policy.retries + 1):
                start = time.perf_counter()
                try:
                    await once(candidate)
                except MissingKeyError as exc:
                    attempts.append(Attempt(name, "skipped: missing key", exc.message))
                    errors.append(exc)
                    break
                except UpstreamError as exc:
                    elapsed = (time.perf_counter() - start) * 1000
                    attempts.append(
                        Attempt(name, exc.code or "upstream_error", exc.message, round(elapsed, 2))
                    )
                    self.metrics.attempts.labels(name, exc.code or "upstream_error").inc()
                    errors.append(exc)
                    if not exc.retryable:
                        self.breaker.success(name)  # the endpoint is healthy; the request was refused
                        raise
                    self.breaker.failure(name)
                    if retry == self.policy.retries or not self.breaker.allow(name):
                        break
                    retry_after = exc.retry_after_s if isinstance(exc, UpstreamStatusError) else None
                    delay = self.policy.delay(retry, retry_after, self.rng)
                    if delay is None:
                        attempts.append(Attempt(name, f"skipped: Retry-After {retry_after:g}s is too long"))
                        break
                    self.metrics.retries.labels(name).inc()
                    await asyncio.sleep(delay)
                else:
                    elapsed = (time.perf_counter() - start) * 1000
                    attempts.append(Attempt(name, "ok", None, round(elapsed, 2)))
                    self.metrics.attempts.labels(name, "ok").inc()
                    self.metrics.upstream_latency.labels(name).observe(elapsed / 1000)
                    self.breaker.success(name)
                    return candidate, attempts
        raise _exhausted(attempts, errors, what)


def _exhausted(attempts: list[Attempt], errors: list[PointsmanError], what: str) -> PointsmanError:
    """The error for "no candidate answered": the last real error, its message listing every attempt."""
    summary = "; ".join(f"{a.endpoint}: {a.error or a.outcome}" for a in attempts) or "no candidates"
    if not errors:
        return UpstreamError(
            f"no endpoint could be tried for {what}: {summary}. Endpoints cool down after repeated failures; "
            "retry shortly or name another endpoint",
            retryable=True,
        )
    last = errors[-1]
    last.message = f"no endpoint produced {what} after {len(attempts)} attempt(s): {summary}"
    last.args = (last.message,)
    return last
