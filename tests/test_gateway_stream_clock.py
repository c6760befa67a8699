"""The idle and total timeouts of a stream after its first token (``StreamSession.rest``), kept by one timer per
stream: only waits for the upstream are timed, another party's cancellation passes through untouched, a stream
past its total deadline fails at its next wait, and no timer outlives the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import pytest

from pointsman.errors import UpstreamTimeoutError
from pointsman.gateway.fallback import Candidate, StreamSession
from pointsman.providers.base import Provider, Timeouts, Upstream

pytestmark = pytest.mark.timeout(30)

CHUNK = {"choices": [{"delta": {"content": "x"}}]}


def session(gen: AsyncIterator[dict[str, Any]], *, idle_s: float, total_s: float) -> StreamSession:
    loop = asyncio.get_running_loop()
    candidate = Candidate("m@p", Upstream("m@p", "http://unused", "m"), cast(Provider, None))
    timeouts = Timeouts(first_token_s=1.0, idle_s=idle_s, total_s=total_s)
    return StreamSession(candidate, [], [], gen, timeouts, loop.time() + total_s)


async def chunks(ready: int, then_wait: asyncio.Event | None = None) -> AsyncIterator[dict[str, Any]]:
    for _ in range(ready):
        yield CHUNK
    if then_wait is not None:
        await then_wait.wait()
        yield CHUNK


def test_a_consumer_slower_than_the_idle_timeout_is_not_the_upstreams_silence() -> None:
    async def run() -> int:
        got = 0
        async for _ in session(chunks(3), idle_s=0.02, total_s=10).rest():
            got += 1
            await asyncio.sleep(0.06)  # e.g. writing to a slow client: three idle periods
        return got

    assert asyncio.run(run()) == 3


def test_an_upstream_silent_past_the_idle_timeout_fails_the_stream() -> None:
    async def run() -> None:
        async for _ in session(chunks(1, asyncio.Event()), idle_s=0.05, total_s=10).rest():
            pass

    with pytest.raises(
        UpstreamTimeoutError, match=r"m@p sent nothing for 0\.05s mid-stream \(idle timeout\)"
    ):
        asyncio.run(run())


def test_a_stream_past_its_total_fails_at_its_next_wait_not_an_idle_period_later() -> None:
    async def run() -> None:
        async with asyncio.timeout(3):  # the idle timeout (20 s) must not be what ends it
            async for _ in session(chunks(1, asyncio.Event()), idle_s=20, total_s=0.05).rest():
                await asyncio.sleep(0.1)  # the consumer is busy as the total runs out

    with pytest.raises(UpstreamTimeoutError, match=r"m@p exceeded the total timeout of 0\.05s"):
        asyncio.run(run())


def test_another_partys_cancel_passes_through_as_a_cancel() -> None:
    async def run() -> None:
        async def read() -> None:
            async for _ in session(chunks(1, asyncio.Event()), idle_s=10, total_s=10).rest():
                pass

        task = asyncio.get_running_loop().create_task(read())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()

    asyncio.run(run())


@pytest.mark.parametrize("how", ["completed", "timed out", "abandoned"])
def test_no_timer_outlives_the_stream(how: str) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        wait = asyncio.Event() if how != "completed" else None
        stream = cast(
            AsyncGenerator[dict[str, Any], None],
            session(chunks(2, wait), idle_s=0.05 if how == "timed out" else 10, total_s=10).rest(),
        )
        try:
            async for _ in stream:
                if how == "abandoned":
                    break
        except UpstreamTimeoutError:
            assert how == "timed out"
        await stream.aclose()
        live = [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]
        assert live == [], "the stream's timer would fire later on a task that has moved on"
        await asyncio.sleep(0.1)  # and no stray cancel is left on this task
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    asyncio.run(run())
