"""A client that hangs up: the gateway stops waiting for the upstream and closes the hold at once (the ledger
side is in test_ledger_gateway.py); a streaming response closes its body however it ends."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from pointsman.gateway.app import create_app
from pointsman.gateway.billing import OpenAccessBilling
from pointsman.gateway.disconnect import RelayResponse
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import fake_catalog, running_gateway
from pointsman.providers.fake import running_fake_provider

pytestmark = pytest.mark.timeout(60)

SCOPE = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "method": "POST", "path": "/"}


@dataclass
class Stack:
    base_url: str
    billing: OpenAccessBilling


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with running_fake_provider() as fake:
        catalog = fake_catalog(
            fake.base_url,
            {
                "late@fake": "fake-model#fault=slow_first_byte&delay_ms=20000",
                "ok@fake": "fake-model#tokens=3",
            },
        )
        billing = OpenAccessBilling()
        app = create_app(catalog=catalog, billing=billing, gateway_settings=GatewaySettings(billing="open"))
        with running_gateway(app) as base_url:
            yield Stack(base_url, billing)


def _send_then_hang_up(stack: Stack, body: dict[str, Any]) -> str:
    """Send ``body`` on a raw socket, close it once the gateway has reserved for it; the request's id."""
    reserved = len(stack.billing.reserved)
    host, _, rest = stack.base_url.removeprefix("http://").partition(":")
    payload = json.dumps(body).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\ncontent-length: {len(payload)}\r\n\r\n"
    with socket.create_connection((host, int(rest.partition("/")[0])), timeout=10) as sock:
        sock.sendall(head.encode() + payload)
        deadline = time.monotonic() + 10
        while len(stack.billing.reserved) == reserved:
            assert time.monotonic() < deadline, "the gateway never reserved for the request"
            time.sleep(0.01)
    return stack.billing.reserved[-1].request_id


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "reply"])
def test_hanging_up_before_the_first_token_releases_at_once(stack: Stack, stream: bool) -> None:
    body = {"model": "late@fake", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    request_id = _send_then_hang_up(stack, body)
    deadline = time.monotonic() + 5  # the upstream's first byte is 20 s away
    while request_id not in stack.billing.released:
        assert time.monotonic() < deadline, "the hold was not released when the client left"
        time.sleep(0.01)
    assert request_id not in [settled[0] for settled in stack.billing.settled]
    metrics = httpx.get(stack.base_url.removesuffix("/v1") + "/metrics").text
    assert 'code="client_disconnected"' in metrics


def test_a_client_that_stays_is_answered_as_before(stack: Stack) -> None:
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
