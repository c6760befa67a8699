"""CPU of the gateway's stream machinery alone — ``StreamSession.rest`` (timeouts) and ``RelayResponse`` (the
ASGI response, the disconnect watch) — per 20-chunk stream, with no network: the upstream is an async generator
whose chunks each arrive in their own event-loop turn, ``send`` discards. 500 streams at once, 7 repeats on
uvloop; the median CPU time per stream.

Compare two versions by running it twice:
  .venv/bin/python benchmarks/gateway_relay.py
  PYTHONPATH=/tmp/base .venv/bin/python benchmarks/gateway_relay.py   # /tmp/base: another tree's pointsman
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import uvloop

from pointsman.gateway.disconnect import RelayResponse
from pointsman.gateway.fallback import Candidate, StreamSession
from pointsman.providers.base import Provider, Timeouts, Upstream

SCOPE = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "method": "POST", "path": "/"}
CHUNK = {
    "id": "x",
    "object": "chat.completion.chunk",
    "model": "m",
    "choices": [{"delta": {"content": "tok"}}],
}
CHUNKS, STREAMS, REPEATS = 20, 500, 7


async def upstream(n: int) -> AsyncIterator[dict[str, Any]]:
    for _ in range(n):
        await asyncio.sleep(0)  # each chunk in its own loop turn, like a paced upstream
        yield dict(CHUNK)


async def one_stream() -> None:
    loop = asyncio.get_running_loop()
    candidate = Candidate("m@p", Upstream("m@p", "http://unused", "m"), cast(Provider, None))
    timeouts = Timeouts(first_token_s=1, idle_s=60, total_s=600)
    session = StreamSession(candidate, [dict(CHUNK)], [], upstream(CHUNKS), timeouts, loop.time() + 600)

    async def body() -> AsyncIterator[bytes]:
        yield b"data: head\n\n"
        async for _ in session.rest():
            yield b"data: chunk\n\n"

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    async def send(message: Any) -> None:
        return None

    async def on_close() -> None:
        return None

    await RelayResponse(body(), on_close=on_close)(SCOPE, receive, send)  # type: ignore[arg-type]


async def main() -> None:
    per_stream = []
    for _ in range(REPEATS):
        start = time.process_time()
        await asyncio.gather(*(one_stream() for _ in range(STREAMS)))
        per_stream.append((time.process_time() - start) / STREAMS * 1e6)
    print(
        f"CPU per {CHUNKS}-chunk stream: {statistics.median(per_stream):.1f} µs "
        f"(median of {REPEATS} × {STREAMS} streams; each: {[round(x) for x in per_stream]})"
    )


if __name__ == "__main__":
    uvloop.run(main())
