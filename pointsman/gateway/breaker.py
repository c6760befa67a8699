"""A circuit breaker per endpoint: failing endpoints cool down, then get one probe, then recover.

    closed ──(failure_threshold consecutive failures)──▶ open ──(cooldown_s)──▶ half-open
      ▲                                                   ▲                         │
      └────────────────(probe succeeds)───────────────────┼──(probe fails)──────────┘

While open, ``allow`` says no and the fallback engine moves on to the next endpoint. In half-open one request
at a time is let through as a probe. The state lives in this process; with Redis configured,
``pointsman.gateway.breaker_redis`` shares it between replicas through the ``on_open``/``on_close`` hooks and
``adopt_open``/``adopt_closed`` (an endpoint one replica opens is skipped by all of them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


@dataclass
class _Entry:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    adopted: bool = False  # opened because another replica opened it (adopt_open), not by failures seen here


class CircuitBreaker:
    """``allow(endpoint)`` before each attempt; ``success``/``failure`` after it."""

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_open: Callable[[str, float], None] | None = None,
        on_close: Callable[[str], None] | None = None,
    ) -> None:
        """``on_open(endpoint, cooldown_s)`` is called when failures here open an endpoint, ``on_close(endpoint)``
        when a probe here closes it again (both on the caller's thread; they must not block)."""
        assert failure_threshold >= 1, "failure_threshold must be at least 1"
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self.on_open = on_open
        self.on_close = on_close

    def state(self, endpoint: str) -> BreakerState:
        entry = self._entries.get(endpoint)
        if entry is None or entry.opened_at is None:
            return "closed"
        if self._clock() - entry.opened_at < self.cooldown_s:
            return "open"
        return "half_open"

    def allow(self, endpoint: str) -> bool:
        """May an attempt go to ``endpoint`` now? In half-open, only the first caller gets the probe."""
        state = self.state(endpoint)
        if state == "closed":
            return True
        if state == "open":
            return False
        entry = self._entries[endpoint]
        if entry.probing:
            return False
        entry.probing = True
        return True

    def success(self, endpoint: str) -> None:
        entry = self._entries.get(endpoint)
        if entry is not None:
            was_open = entry.opened_at is not None
            entry.failures = 0
            entry.opened_at = None
            entry.probing = False
            entry.adopted = False
            if was_open and self.on_close is not None:
                self.on_close(endpoint)

    def failure(self, endpoint: str) -> None:
        entry = self._entries.setdefault(endpoint, _Entry())
        entry.failures += 1
        if entry.probing or entry.failures >= self.failure_threshold:
            entry.opened_at = self._clock()
            entry.probing = False
            entry.adopted = False
            if self.on_open is not None:
                self.on_open(endpoint, self.cooldown_s)

    def adopt_open(self, endpoint: str, remaining_s: float) -> None:
        """Another replica opened ``endpoint``; skip it here too for the ``remaining_s`` of its cooldown (never
        shortening a cooldown this replica is already in)."""
        entry = self._entries.setdefault(endpoint, _Entry())
        opened_at = self._clock() - self.cooldown_s + remaining_s
        if entry.opened_at is None:
            entry.adopted = True
        elif opened_at <= entry.opened_at:
            return
        entry.opened_at = opened_at

    def adopt_closed(self, endpoint: str) -> None:
        """Another replica's probe closed ``endpoint``: end a cooldown adopted from it (one opened by failures
        seen here runs its course)."""
        entry = self._entries.get(endpoint)
        if entry is not None and entry.adopted and entry.opened_at is not None:
            entry.failures = 0
            entry.opened_at = None
            entry.probing = False
            entry.adopted = False

    def adopted(self) -> list[str]:
        """Endpoints open or half-open only because another replica opened them."""
        return [name for name, e in self._entries.items() if e.adopted and e.opened_at is not None]

    def cooling_down(self) -> dict[str, float]:
        """Endpoints now open, with the seconds left until their probe."""
        now = self._clock()
        return {
            name: round(self.cooldown_s - (now - e.opened_at), 3)
            for name, e in self._entries.items()
            if e.opened_at is not None and now - e.opened_at < self.cooldown_s
        }
