"""Per-key requests-per-minute limits: in-process, and through the real Redis shared by two limiters (as two
gateway replicas would share it)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pointsman.errors import ConfigError, RateLimitError
from pointsman.ledger.limits import InProcessRateLimiter, RedisRateLimiter, make_rate_limiter

REDIS_URL = "redis://127.0.0.1:6379/0"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_in_process_sliding_window() -> None:
    async def scenario() -> None:
        clock = FakeClock()
        limiter = InProcessRateLimiter(clock=clock)
        for _ in range(3):
            await limiter.hit(1, 3)
        with pytest.raises(RateLimitError, match=r"3 requests per minute; retry in 60.0 s") as info:
            await limiter.hit(1, 3)
        assert info.value.status_code == 429
        await limiter.hit(2, 3)  # other keys are counted apart
        clock.t += 30
        with pytest.raises(RateLimitError, match=r"retry in 30.0 s"):
            await limiter.hit(1, 3)
        clock.t += 30.001
        await limiter.hit(1, 3)
        await limiter.aclose()

    asyncio.run(scenario())


def _redis_reason() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        return f"Redis at {REDIS_URL} is not reachable ({exc})"
    return None


@pytest.mark.redis
def test_redis_limit_is_shared_between_replicas() -> None:
    if reason := _redis_reason():
        pytest.skip(reason)

    async def scenario() -> None:
        namespace = f"pointsman-test:{uuid.uuid4().hex}"
        a = RedisRateLimiter(REDIS_URL, namespace=namespace)
        b = RedisRateLimiter(REDIS_URL, namespace=namespace)
        results = await asyncio.gather(
            *[(a if i % 2 else b).hit(7, 5) for i in range(12)], return_exceptions=True
        )
        assert sum(r is None for r in results) == 5
        assert all(isinstance(r, RateLimitError) for r in results if r is not None)
        await a.hit(8, 5)  # another key is untouched
        await a.aclose()
        await b.aclose()

    asyncio.run(scenario())


def test_unreachable_redis_is_a_config_error_naming_the_setting() -> None:
    async def scenario() -> None:
        limiter = RedisRateLimiter("redis://127.0.0.1:1/0")
        with pytest.raises(ConfigError, match="POINTSMAN_REDIS_URL"):
            await limiter.hit(1, 5)
        await limiter.aclose()

    asyncio.run(scenario())


def test_factory() -> None:
    assert isinstance(make_rate_limiter(None), InProcessRateLimiter)
    assert isinstance(make_rate_limiter(REDIS_URL), RedisRateLimiter)
