"""Per-key requests-per-minute limits: a sliding one-minute window, in Redis when configured (shared by every
replica) or in this process otherwise.

Per-key *budgets* are not here: they are counted in the database in the same transaction as the reservation
they limit (``Ledger.reserve``), so a crash can never leave a budget and the ledger disagreeing.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Protocol

from pointsman.errors import ConfigError, RateLimitError

__all__ = ["InProcessRateLimiter", "RateLimiter", "RedisRateLimiter", "make_rate_limiter"]

WINDOW_S = 60.0


def _limited(limit: int, retry_after_s: float) -> RateLimitError:
    return RateLimitError(
        f"this API key is limited to {limit} requests per minute; retry in {max(retry_after_s, 0.0):.1f} s "
        "or ask an admin for a higher limit (`pointsman keys create --rpm`)"
    )


class RateLimiter(Protocol):
    async def hit(self, key_id: int, limit: int) -> None:
        """Count one request for ``key_id``; RateLimitError (429) if it makes more than ``limit`` in a minute."""
        ...

    async def aclose(self) -> None: ...


class InProcessRateLimiter:
    """A sliding-window log per key in this process (one gateway replica)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: defaultdict[int, deque[float]] = defaultdict(deque)
        self._lock = asyncio.Lock()

    async def hit(self, key_id: int, limit: int) -> None:
        async with self._lock:
            now = self._clock()
            window = self._hits[key_id]
            while window and window[0] <= now - WINDOW_S:
                window.popleft()
            if len(window) >= limit:
                raise _limited(limit, window[0] + WINDOW_S - now)
            window.append(now)

    async def aclose(self) -> None:
        self._hits.clear()


# KEYS[1] = the key's sorted set; ARGV = now_ms, window_ms, limit, member. Returns 0 when allowed, else the
# milliseconds until the oldest hit leaves the window. Atomic: Redis runs a script without interleaving.
_SLIDING_WINDOW_LUA = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', key, now, ARGV[4])
redis.call('PEXPIRE', key, window)
return 0
"""


class RedisRateLimiter:
    """A sliding-window log per key in Redis, shared by every replica that uses the same Redis."""

    def __init__(self, url: str, *, namespace: str = "pointsman:rpm") -> None:
        import redis.asyncio as aioredis

        self._url = url
        self._redis = aioredis.Redis.from_url(url)
        self._namespace = namespace
        self._script = self._redis.register_script(_SLIDING_WINDOW_LUA)

    async def hit(self, key_id: int, limit: int) -> None:
        import redis.exceptions

        now_ms = int(time.time() * 1000)
        try:
            wait_ms = await self._script(
                keys=[f"{self._namespace}:{key_id}"],
                args=[now_ms, int(WINDOW_S * 1000), limit, f"{now_ms}:{uuid.uuid4().hex}"],
            )
        except redis.exceptions.RedisError as exc:
            raise ConfigError(
                f"cannot reach Redis for rate limits ({type(exc).__name__}: {exc}); check POINTSMAN_REDIS_URL "
                "and that Redis is running, or unset it to limit per process"
            ) from exc
        if int(wait_ms):
            raise _limited(limit, int(wait_ms) / 1000)

    async def aclose(self) -> None:
        await self._redis.aclose()


def make_rate_limiter(redis_url: str | None) -> RateLimiter:
    """Redis-backed when ``redis_url`` is set, in-process otherwise."""
    return RedisRateLimiter(redis_url) if redis_url else InProcessRateLimiter()
