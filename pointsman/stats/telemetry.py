"""Passive telemetry: every routed stream records its endpoint's TTFT and ITL, so real traffic keeps the
figures fresh between benchmark runs.

The gateway's chat route wraps the stream it relays with ``TrafficTelemetry.watch(session)``: TTFT is the
fallback engine's own measurement for the attempt that answered (request sent → first token), ITL the gaps
between the content chunks that follow. Samples are buffered in memory and written in one batch every
``flush_s`` seconds (a request never waits for the database); when the buffer is full the oldest samples are
dropped and counted. Non-streaming requests have no TTFT and are not sampled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from pointsman.errors import UpstreamError
from pointsman.stats.figures import quantile
from pointsman.stats.store import Sample, StatsStore

if TYPE_CHECKING:
    from pointsman.gateway.fallback import StreamSession

__all__ = ["TrafficTelemetry"]

log = logging.getLogger("pointsman.stats.telemetry")


def _has_content(chunk: dict[str, Any]) -> bool:
    return any((c.get("delta") or {}).get("content") for c in chunk.get("choices") or ())


class TrafficTelemetry:
    """Buffers traffic samples and writes them to ``store`` in batches."""

    def __init__(self, store: StatsStore, *, region: str, flush_s: float = 5.0, buffer: int = 10_000) -> None:
        assert flush_s > 0 and buffer >= 1, "flush_s must be positive and buffer at least 1"
        self.store = store
        self.region = region
        self.flush_s = flush_s
        self._pending: deque[Sample] = deque(maxlen=buffer)
        self.recorded = 0
        self.written = 0
        self.dropped = 0
        self._task: asyncio.Task[None] | None = None

    def record(self, sample: Sample) -> None:
        """Queue one sample for the next flush."""
        if len(self._pending) == self._pending.maxlen:
            self.dropped += 1
        self._pending.append(sample)
        self.recorded += 1

    def observe(
        self,
        endpoint: str,
        *,
        ttft_s: float,
        chunk_times: list[float],
        usage: dict[str, Any] | None,
        error: str | None = None,
    ) -> None:
        """Record one routed stream from its timings (``chunk_times``: loop times of the content chunks after
        the first token)."""
        reported = isinstance(usage, dict) and usage.get("completion_tokens") is not None
        tokens: dict[str, Any] = {"usage_reported": reported}
        if reported and usage is not None:
            tokens |= {
                "input_tokens": usage.get("prompt_tokens"),
                "output_tokens": usage["completion_tokens"],
            }
        if error is not None:
            self.record(Sample(endpoint, "traffic", False, self.region, error=error, **tokens))
            return
        gaps = [(b - a) * 1000 for a, b in itertools.pairwise(chunk_times)]
        self.record(
            Sample(
                endpoint,
                "traffic",
                True,
                self.region,
                ttft_ms=ttft_s * 1000,
                itl_ms=sum(gaps) / len(gaps) if gaps else None,
                itl_p90_ms=quantile(gaps, 0.9) if gaps else None,
                **tokens,
            )
        )

    async def watch(self, session: StreamSession) -> AsyncIterator[dict[str, Any]]:
        """``session.rest()``, timed: yields the same chunks and records a sample when the stream ends (a failed
        sample when it breaks mid-stream; nothing when the client goes away)."""
        loop = asyncio.get_running_loop()
        times: list[float] = []
        usage: dict[str, Any] | None = None
        endpoint = session.candidate.endpoint
        try:
            async for chunk in session.rest():
                if _has_content(chunk):
                    times.append(loop.time())
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                yield chunk
        except UpstreamError as exc:
            self.observe(
                endpoint, ttft_s=session.first_token_s, chunk_times=times, usage=usage, error=exc.code
            )
            raise
        # A stream that ended with no content at all (only a finish reason) has no time to first token.
        empty = not times and not any(_has_content(c) for c in session.head)
        error = "no tokens streamed: the stream ended without any content" if empty else None
        self.observe(endpoint, ttft_s=session.first_token_s, chunk_times=times, usage=usage, error=error)

    async def flush(self) -> int:
        """Write the buffered samples now; returns how many. On a database error they stay buffered."""
        batch = list(self._pending)
        if not batch:
            return 0
        try:
            await asyncio.to_thread(self.store.add_samples, batch)
        except SQLAlchemyError as exc:
            log.warning(
                "cannot write %d traffic sample(s) to the stats store; retrying later: %s", len(batch), exc
            )
            return 0
        for _ in batch:
            self._pending.popleft()
        self.written += len(batch)
        return len(batch)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            await self.flush()

    def start(self) -> None:
        assert self._task is None, "telemetry is already flushing"
        self._task = asyncio.create_task(self._flush_forever(), name="pointsman-telemetry-flush")

    async def aclose(self) -> None:
        """Stop the flush loop and write what is left."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()
