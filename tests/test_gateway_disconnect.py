"""A client that hangs up: the gateway stops waiting for the upstream and closes the hold at once (the ledger
side is in test_ledger_gateway.py); a streaming response closes its body however it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from _gateway_stack import GatewayStack, gateway_stack, hang_up_once, wait_until

from pointsman.errors import ClientDisconnectedError
from pointsman.gateway.disconnect import ClientWatch, RelayResponse

pytestmark = pytest.mark.timeout(60)

SCOPE = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "method": "POST", "path": "/"}


@pytest.fixture(scope="module")
def stack() -> Iterator[GatewayStack]:
    late = "fake-model#fault=slow_first_byte&delay_ms=20000"  # the first byte comes long after the test
    with gateway_stack({"late@fake": late, "ok@fake": "fake-model#tokens=3"}) as stack:
        yield stack


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "reply"])
def test_hanging_up_before_the_first_token_releases_at_once(stack: GatewayStack, stream: bool) -> None:
    body = {"model": "late@fake", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    reserved = len(stack.billing.reserved)
    hang_up_once(stack.base_url, body, until=lambda: len(stack.billing.reserved) > reserved)
    request_id = stack.billing.reserved[-1].request_id
    wait_until(lambda: request_id in stack.billing.released, "the hold was not released when the client left")
    assert request_id not in [settled[0] for settled in stack.billing.settled]
    metrics = httpx.get(stack.root + "/metrics").text
    assert 'code="client_disconnected"' in metrics


def test_a_client_that_stays_is_answered_as_before(stack: GatewayStack) -> None:
    """The disconnect watch must not disturb a normal request (nor consume its body)."""
    for stream in (False, True):
        resp = httpx.post(
            stack.base_url + "/chat/completions",
            json={"model": "ok@fake", "messages": [{"role": "user", "content": "hi"}], "stream": stream},
            timeout=20,
        )
        assert resp.status_code == 200, resp.text
        assert (resp.text.endswith("data: [DONE]\n\n")) if stream else resp.json()["choices"]


# --- RelayResponse, through the ASGI interface --------------------------------------------------------------


def _relay_run(body: AsyncIterator[bytes], stuck_from: int, events: list[str]) -> list[dict[str, Any]]:
    """Serve a RelayResponse over ``body`` to a client that stopped reading: message number ``stuck_from``
    (0 is the response start) never finishes sending, and the client's disconnect arrives meanwhile."""
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        stuck = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await stuck.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)
            if len(sent) > stuck_from:
                stuck.set()
                await asyncio.Event().wait()  # the socket is full: this write never completes

        async def on_close() -> None:
            events.append("on_close")

        response = RelayResponse(body, on_close=on_close, media_type="text/event-stream")
        await response(SCOPE, receive, send)  # type: ignore[arg-type]
        events.append("returned")

    asyncio.run(run())
    return sent


def test_relay_response_closes_a_body_left_at_a_yield_before_returning() -> None:
    events: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"data: {}\n\n"
        finally:
            events.append("body finally")

    sent = _relay_run(body(), stuck_from=1, events=events)
    assert [m["type"] for m in sent][:2] == ["http.response.start", "http.response.body"]
    assert events == ["body finally", "on_close", "returned"], "cleanup runs now, not when the GC gets to it"


def test_relay_response_runs_on_close_for_a_body_that_never_started() -> None:
    events: list[str] = []

    async def body() -> AsyncIterator[bytes]:
        events.append("body started")
        yield b"never sent"

    sent = _relay_run(body(), stuck_from=0, events=events)
    assert [m["type"] for m in sent] == ["http.response.start"]
    assert events == ["on_close", "returned"], "the body never ran, so on_close settles instead"


def test_relay_response_sends_nothing_when_the_client_left_before_it_began() -> None:
    """A hang-up between the first token and the response (outside any watched wait) is only recorded: the
    handler is not cancelled there, and the response then sends nothing and cleans up."""
    events: list[str] = []
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def body() -> AsyncIterator[bytes]:
            events.append("body started")
            yield b"data: {}\n\n"

        async def on_close() -> None:
            events.append("on_close")

        watch = ClientWatch(receive)
        await asyncio.sleep(0.01)  # the watcher sees the hang-up while nothing is watched
        assert watch.left
        response = RelayResponse(body(), on_close=on_close, watch=watch)
        await response(SCOPE, receive, send)  # type: ignore[arg-type]
        events.append("returned")

    asyncio.run(run())
    assert sent == []
    assert events == ["on_close", "returned"]


def test_relay_response_treats_an_oserror_from_send_as_the_client_leaving() -> None:
    """ASGI 2.4 servers raise OSError from ``send`` once the client is gone."""
    events: list[str] = []

    async def run() -> None:
        async def receive() -> dict[str, Any]:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                raise OSError("broken pipe")

        async def body() -> AsyncIterator[bytes]:
            try:
                yield b"data: {}\n\n"
                yield b"data: {}\n\n"
            finally:
                events.append("body finally")

        async def on_close() -> None:
            events.append("on_close")

        await RelayResponse(body(), on_close=on_close)(SCOPE, receive, send)  # type: ignore[arg-type]
        events.append("returned")

    asyncio.run(run())
    assert events == ["body finally", "on_close", "returned"]


def test_guard_raises_client_disconnected_and_takes_back_only_its_own_cancel() -> None:
    async def run() -> None:
        gone = asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        watch = ClientWatch(receive)
        assert await watch.guard(asyncio.sleep(0, "answer")) == "answer"
        cleaned: list[str] = []

        async def work() -> None:
            try:
                await asyncio.Event().wait()
            finally:
                cleaned.append("work cleanup")

        loop = asyncio.get_running_loop()
        loop.call_later(0.02, gone.set)
        with pytest.raises(ClientDisconnectedError):
            await watch.guard(work())
        assert cleaned == ["work cleanup"]
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
        with pytest.raises(ClientDisconnectedError):  # gone for good: later work is not even started
            await watch.guard(work())
        assert cleaned == ["work cleanup"]
        watch.stop()

    asyncio.run(run())
