"""The circuit breaker and the retry/fallback engine, with scripted in-process providers (no timing luck:
the breaker takes a fake clock, the engine a seeded RNG and tiny backoffs)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pointsman.errors import (
    MissingKeyError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamStatusError,
    UpstreamTimeoutError,
)
from pointsman.gateway.breaker import CircuitBreaker
from pointsman.gateway.fallback import Candidate, FallbackEngine, RetryPolicy, has_token
from pointsman.gateway.metrics import GatewayMetrics
from pointsman.providers.base import ChatBody, Provider, Timeouts, Upstream


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_cools_down_probes_and_recovers() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=10, clock=clock)
    assert breaker.state("e") == "closed"
    breaker.failure("e")
    assert breaker.allow("e"), "one failure is below the threshold"
    breaker.failure("e")
    assert breaker.state("e") == "open" and not breaker.allow("e")
    assert breaker.cooling_down() == {"e": 10.0}
    clock.now += 10
    assert breaker.state("e") == "half_open"
    assert breaker.allow("e"), "the first caller gets the probe"
    assert not breaker.allow("e"), "only one probe at a time"
    breaker.failure("e")
    assert breaker.state("e") == "open", "a failed probe reopens at once"
    clock.now += 10
    assert breaker.allow("e")
    breaker.success("e")
    assert breaker.state("e") == "closed" and breaker.allow("e") and breaker.cooling_down() == {}


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker(failure_threshold=2, cooldown_s=10, clock=Clock())
    breaker.failure("e")
    breaker.success("e")
    breaker.failure("e")
    assert breaker.state("e") == "closed"


def test_backoff_is_exponential_jittered_capped_and_honours_retry_after() -> None:
    policy = RetryPolicy(retries=5, backoff_base_s=1.0, backoff_max_s=4.0, max_retry_after_s=30)
    rng = random.Random(0)
    delays = [policy.delay(k, None, rng) for k in range(5)]
    for k, d in enumerate(delays):
        full = min(4.0, 2.0**k)
        assert d is not None and full / 2 <= d <= full
    assert policy.delay(0, 7.0, rng) == 7.0, "a longer Retry-After wins"
    assert policy.delay(0, 31.0, rng) is None, "a Retry-After beyond the cap moves on"


class Scripted(Provider):
    """Fails or answers per endpoint as scripted: a list of outcomes consumed one per call."""

    api_style = "scripted"

    def __init__(self, script: dict[str, list[Any]]) -> None:
        super().__init__(httpx.AsyncClient())
        self.script = script
        self.calls: list[str] = []

    def _next(self, upstream: Upstream) -> Any:
        self.calls.append(upstream.endpoint)
        outcomes = self.script[upstream.endpoint]
        return outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]

    async def send(self, upstream: Upstream, body: ChatBody, timeouts: Timeouts) -> dict[str, Any]:
        outcome = self._next(upstream)
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome == "hang":
            await asyncio.sleep(10)
        return {"choices": [{"message": {"content": upstream.endpoint}}]}

    async def stream(
        self, upstream: Upstream, body: ChatBody, timeouts: Timeouts
    ) -> AsyncIterator[dict[str, Any]]:
        outcome = self._next(upstream)
        if isinstance(outcome, BaseException):
            raise outcome
        yield {"choices": [{"delta": {"role": "assistant", "content": ""}}]}
        if outcome == "hang":
            await asyncio.sleep(10)
        yield {"choices": [{"delta": {"content": "hi"}}]}
        if outcome == "stall_after_first":
            await asyncio.sleep(10)
        yield {"choices": [{"delta": {}, "finish_reason": "stop"}]}


def engine(retries: int = 1, depth: int = 3, threshold: int = 100, **timeouts: float) -> FallbackEngine:
    return FallbackEngine(
        breaker=CircuitBreaker(failure_threshold=threshold, cooldown_s=60),
        policy=RetryPolicy(retries=retries, backoff_base_s=0.001, backoff_max_s=0.002),
        timeouts=Timeouts(**{"first_token_s": 0.2, "idle_s": 0.2, "total_s": 1.0, **timeouts}),
        metrics=GatewayMetrics(),
        depth=depth,
        rng=random.Random(1),
    )


def cands(provider: Scripted, *names: str) -> list[Candidate]:
    return [Candidate(n, Upstream(n, "http://unused", n), provider) for n in names]


def err500(name: str) -> UpstreamStatusError:
    return UpstreamStatusError("boom", upstream_status=500, endpoint=name)


def test_exact_retries_then_fallback() -> None:
    p = Scripted({"a": [err500("a")], "b": ["ok"]})
    cand, reply, attempts = asyncio.run(engine(retries=2).send(cands(p, "a", "b"), {}))
    assert cand.endpoint == "b" and reply["choices"][0]["message"]["content"] == "b"
    assert p.calls == ["a", "a", "a", "b"]
    assert [a.outcome for a in attempts] == ["upstream_status_error"] * 3 + ["ok"]


def test_retry_can_succeed_on_the_same_endpoint() -> None:
    p = Scripted({"a": [UpstreamConnectionError("reset", endpoint="a"), "ok"], "b": ["ok"]})
    cand, _, _ = asyncio.run(engine(retries=1).send(cands(p, "a", "b"), {}))
    assert cand.endpoint == "a" and p.calls == ["a", "a"]


def test_non_retryable_error_stops_the_walk() -> None:
    bad = UpstreamStatusError("bad request", upstream_status=400, endpoint="a")
    p = Scripted({"a": [bad], "b": ["ok"]})
    with pytest.raises(UpstreamStatusError, match="bad request"):
        asyncio.run(engine().send(cands(p, "a", "b"), {}))
    assert p.calls == ["a"]


def test_missing_key_skips_to_the_next_endpoint_without_retrying() -> None:
    p = Scripted({"a": [MissingKeyError("set A_KEY")], "b": ["ok"]})
    cand, _, attempts = asyncio.run(engine(retries=3).send(cands(p, "a", "b"), {}))
    assert cand.endpoint == "b" and p.calls == ["a", "b"]
    assert attempts[0].outcome == "skipped: missing key"


def test_long_retry_after_moves_on_without_waiting() -> None:
    slow = UpstreamStatusError("slow down", upstream_status=429, endpoint="a", retry_after_s=3600)
    p = Scripted({"a": [slow], "b": ["ok"]})
    cand, _, attempts = asyncio.run(engine(retries=3).send(cands(p, "a", "b"), {}))
    assert cand.endpoint == "b" and p.calls == ["a", "b"]
    assert "Retry-After 3600s is too long" in attempts[1].outcome


def test_depth_limits_the_endpoints_tried_and_the_error_lists_every_attempt() -> None:
    p = Scripted({n: [err500(n)] for n in "abcd"})
    with pytest.raises(UpstreamStatusError) as info:
        asyncio.run(engine(retries=0, depth=2).send(cands(p, "a", "b", "c", "d"), {}))
    assert p.calls == ["a", "b"]
    assert "after 2 attempt(s): a: boom; b: boom" in info.value.message


def test_open_breaker_skips_the_endpoint() -> None:
    p = Scripted({"a": [err500("a")], "b": ["ok"]})
    e = engine(retries=0, threshold=1)
    asyncio.run(e.send(cands(p, "a", "b"), {}))
    p.calls.clear()
    _, _, attempts = asyncio.run(e.send(cands(p, "a", "b"), {}))
    assert p.calls == ["b"]
    assert attempts[0].outcome.startswith("skipped: cooling down")


def test_every_candidate_cooling_down_is_a_clear_error() -> None:
    p = Scripted({"a": [err500("a")]})
    e = engine(retries=0, threshold=1)
    with pytest.raises(UpstreamError):
        asyncio.run(e.send(cands(p, "a"), {}))
    with pytest.raises(UpstreamError, match="cool down after repeated failures"):
        asyncio.run(e.send(cands(p, "a"), {}))


def test_total_timeout_on_a_reply_falls_back() -> None:
    p = Scripted({"a": ["hang"], "b": ["ok"]})
    cand, _, attempts = asyncio.run(engine(retries=0, total_s=0.05).send(cands(p, "a", "b"), {}))
    assert cand.endpoint == "b" and attempts[0].outcome == "upstream_timeout"


def test_stream_commits_at_the_first_token_and_holds_back_the_role_chunk() -> None:
    p = Scripted({"a": ["ok"]})

    async def run() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        session = await engine().open_stream(cands(p, "a"), {})
        return session.head, [c async for c in session.rest()]

    head, rest = asyncio.run(run())
    assert len(head) == 2 and has_token(head[-1]) and not has_token(head[0])
    assert rest == [{"choices": [{"delta": {}, "finish_reason": "stop"}]}]


def test_first_token_timeout_falls_back() -> None:
    p = Scripted({"a": ["hang"], "b": ["ok"]})

    async def run() -> str:
        session = await engine(retries=0, first_token_s=0.05).open_stream(cands(p, "a", "b"), {})
        await session.aclose()
        return session.candidate.endpoint

    assert asyncio.run(run()) == "b"


def test_idle_timeout_after_the_first_token_raises_from_rest() -> None:
    p = Scripted({"a": ["stall_after_first"], "b": ["ok"]})

    async def run() -> None:
        session = await engine(idle_s=0.05).open_stream(cands(p, "a", "b"), {})
        assert session.candidate.endpoint == "a"
        async for _ in session.rest():
            pass

    with pytest.raises(UpstreamTimeoutError, match=r"sent nothing for 0\.05s mid-stream"):
        asyncio.run(run())
    assert p.calls == ["a"], "never falls back after the first token"


def test_total_timeout_mid_stream_names_the_total() -> None:
    p = Scripted({"a": ["stall_after_first"]})

    async def run() -> None:
        session = await engine(idle_s=5, total_s=0.1).open_stream(cands(p, "a"), {})
        async for _ in session.rest():
            pass

    with pytest.raises(UpstreamTimeoutError, match=r"total timeout of 0\.1s"):
        asyncio.run(run())
