"""Circuit breakers shared by gateway replicas through Redis (``POINTSMAN_REDIS_URL``).

Each replica keeps deciding with its own ``CircuitBreaker`` (no Redis round trip per attempt); this syncs
the transitions in the background:

- when failures open an endpoint here, ``SET pointsman:breaker:<endpoint> 1 PX <cooldown>``: a key that
  lives exactly as long as the cooldown, on Redis's clock;
- when a probe here closes it, ``DEL`` the key;
- every ``interval_s``, one script reads the remaining TTL of every endpoint's key: an endpoint with a key
  is opened here for what remains (``adopt_open``); one whose key vanished before the cooldown adopted from it
  ended was closed by another replica's probe (``adopt_closed``).

Redis being down never stops the gateway: it logs one warning, goes on with the local breaker alone, retries
every interval, and logs again when Redis is back (transitions made meanwhile are sent then, if still due).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from pointsman.gateway.breaker import CircuitBreaker

__all__ = ["RedisBreakerSync", "share_breaker"]

log = logging.getLogger("pointsman.gateway.breaker")

# A key that vanishes this close to the end of the cooldown adopted from it simply expired (Redis's clock and
# ours differ by a little): the endpoint goes half-open here as everywhere, rather than closed.
_CLOSE_MARGIN_S = 0.25
_STOP_S = 5.0  # the most aclose waits for the sync in progress before cancelling it

# KEYS: the endpoints' keys. Returns the remaining milliseconds of each (0 when there is no key).
_REMAINING_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then ttl = 0 end
  out[i] = ttl
end
return out
"""


class RedisBreakerSync:
    """Shares ``breaker``'s open/close transitions for ``endpoints`` with every replica on the same Redis."""

    def __init__(
        self,
        breaker: CircuitBreaker,
        redis_url: str,
        endpoints: Iterable[str],
        *,
        interval_s: float = 0.5,
        prefix: str = "pointsman:breaker:",
    ) -> None:
        import redis.asyncio as aioredis

        self.breaker = breaker
        self.interval_s = interval_s
        self.prefix = prefix
        self.endpoints = sorted(set(endpoints))
        self._url = redis_url
        self._redis = aioredis.Redis.from_url(redis_url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._remaining = self._redis.register_script(_REMAINING_LUA)
        # endpoint -> the monotonic end of the cooldown to announce, or None: announce that it closed
        self._pending: dict[str, float | None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.healthy: bool | None = None  # None until the first sync
        breaker.on_open = self._opened
        breaker.on_close = self._closed

    def key(self, endpoint: str) -> str:
        return self.prefix + endpoint

    # --- hooks, called by the breaker on the event loop --------------------------------------------------------

    def _opened(self, endpoint: str, cooldown_s: float) -> None:
        self._pending[endpoint] = time.monotonic() + cooldown_s
        self._wake.set()

    def _closed(self, endpoint: str) -> None:
        self._pending[endpoint] = None
        self._wake.set()

    # --- the sync ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pointsman-breaker-sync")

    async def aclose(self) -> None:
        """Stop syncing: the loop ends after the sync in progress (bounded by the socket timeouts); it is
        cancelled only if it does not."""
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=_STOP_S)
            if not done:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.breaker.on_open = self.breaker.on_close = None
        await self._redis.aclose()

    async def _run(self) -> None:
        # Wakes on a transition here or every interval_s. No asyncio.timeout around the wait: on Python 3.11 a
        # cancel that lands as the timeout expires can be taken for the timeout and swallowed (seen: a gateway
        # whose shutdown waited forever on this task).
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await self.sync_once()
            tick = loop.call_later(self.interval_s, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                tick.cancel()
            self._wake.clear()

    async def sync_once(self) -> bool:
        """Send this replica's transitions, then adopt the others'. False (and the local breaker alone) while
        Redis cannot be reached."""
        import redis.exceptions

        try:
            await self._push()
            await self._pull()
        except (redis.exceptions.RedisError, OSError) as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # a cancel the client library reported as an error
                raise asyncio.CancelledError from exc
            if self.healthy is not False:
                log.warning(
                    "cannot reach Redis at %s to share circuit breakers (%s: %s); each replica uses its own "
                    "breaker until Redis is back",
                    self._safe_url(),
                    type(exc).__name__,
                    exc,
                )
            self.healthy = False
            return False
        if self.healthy is False:
            log.warning("Redis at %s is back: circuit breakers are shared again", self._safe_url())
        self.healthy = True
        return True

    async def _push(self) -> None:
        while self._pending:
            endpoint, until = next(iter(self._pending.items()))
            if until is None:
                await self._redis.delete(self.key(endpoint))
            else:
                remaining_ms = int((until - time.monotonic()) * 1000)
                if remaining_ms > 0:
                    await self._redis.set(self.key(endpoint), b"1", px=remaining_ms)
            if self._pending.get(endpoint, 0.0) == until:  # not changed again while awaiting
                del self._pending[endpoint]

    async def _pull(self) -> None:
        if not self.endpoints:
            return
        remaining: Any = await self._remaining(keys=[self.key(e) for e in self.endpoints])
        adopted = set(self.breaker.adopted())
        cooling = self.breaker.cooling_down()
        for endpoint, ms in zip(self.endpoints, remaining, strict=True):
            if endpoint in self._pending:
                continue  # this replica's own newer news goes out first
            if int(ms) > 0:
                self.breaker.adopt_open(endpoint, int(ms) / 1000)
            elif endpoint in adopted and cooling.get(endpoint, 0.0) > _CLOSE_MARGIN_S:
                self.breaker.adopt_closed(endpoint)  # gone early: closed by a probe, not expired

    def _safe_url(self) -> str:
        """The URL without a password, for logs."""
        scheme, sep, rest = self._url.partition("://")
        return scheme + sep + rest.rpartition("@")[2] if sep else self._url


def share_breaker(
    breaker: CircuitBreaker, redis_url: str | None, endpoints: Iterable[str], *, interval_s: float = 0.5
) -> RedisBreakerSync | None:
    """Start sharing ``breaker`` through Redis when ``redis_url`` is set (on the running loop); None otherwise."""
    if not redis_url:
        return None
    sync = RedisBreakerSync(breaker, redis_url, endpoints, interval_s=interval_s)
    sync.start()
    return sync
