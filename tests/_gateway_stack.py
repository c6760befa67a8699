"""The gateway test stack, built one way for every gateway test: the fake provider and the gateway as real
servers on loopback (``pointsman.gateway.testing``), a catalogue of scripted fake endpoints, the billing the
test chooses, and the real ``openai`` client.

    with gateway_stack({"ok@fake": "fake-model#tokens=3"}) as stack:
        stack.client().chat.completions.create(model="ok@fake", messages=[...])

Plus the two waits these tests share: ``wait_until`` (poll a condition with a deadline, never sleep-and-assert)
and ``hang_up_once`` (send a chat request on a raw socket and close it at a chosen moment).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import openai
from fastapi import FastAPI

from pointsman.gateway.app import create_app
from pointsman.gateway.billing import Billing, OpenAccessBilling
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import fake_catalog, running_gateway
from pointsman.providers.fake import FakeConfig, FakeProviderServer, running_fake_provider

__all__ = ["GatewayStack", "gateway_stack", "hang_up_once", "wait_until"]

OPEN = GatewaySettings(billing="open")


@dataclass
class GatewayStack:
    fake: FakeProviderServer
    base_url: str  # the gateway's OpenAI base URL, ``http://127.0.0.1:PORT/v1``
    billing: Any  # what the gateway was given (an OpenAccessBilling unless the test chose)
    app: FastAPI

    @property
    def root(self) -> str:
        return self.base_url.removesuffix("/v1")

    def client(self, api_key: str = "test", **kw: Any) -> openai.OpenAI:
        """The real OpenAI client, with no retries of its own (only the gateway retries)."""
        return openai.OpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kw)

    def cooling_down(self) -> dict[str, float]:
        return dict(httpx.get(self.root + "/healthz", timeout=10).json()["cooling_down"])


@contextmanager
def gateway_stack(
    endpoints: Mapping[str, str],
    *,
    gateway_settings: GatewaySettings = OPEN,
    billing: Billing | None = None,
    fake: FakeProviderServer | None = None,
    fake_config: FakeConfig | None = None,
    catalog_options: Mapping[str, Any] | None = None,
    uvloop: bool = True,
    **app_options: Any,
) -> Iterator[GatewayStack]:
    """A gateway over a catalogue of ``endpoints`` (``model@provider`` → upstream model id with its
    ``#script``) served by ``fake`` (or a fake provider started for the block, with ``fake_config``).
    ``catalog_options`` go to ``fake_catalog``, ``app_options`` to ``create_app`` (e.g. ``settings``,
    ``ranker``, ``default_router``)."""
    with ExitStack() as stack:
        if fake is None:
            fake = stack.enter_context(running_fake_provider(fake_config))
        catalog = fake_catalog(fake.base_url, endpoints, **(catalog_options or {}))
        billing = billing if billing is not None else OpenAccessBilling()
        app = create_app(catalog=catalog, billing=billing, gateway_settings=gateway_settings, **app_options)
        base_url = stack.enter_context(running_gateway(app, uvloop=uvloop))
        yield GatewayStack(fake, base_url, billing, app)


def wait_until(condition: Callable[[], object], what: str, timeout_s: float = 5.0) -> None:
    """Poll ``condition`` until it is true; fail saying ``what`` did not happen within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} (not within {timeout_s:g} s)"
        time.sleep(0.01)


def hang_up_once(
    base_url: str,
    body: Mapping[str, Any],
    until: Callable[[], object] = lambda: True,
    *,
    headers: Mapping[str, str] | None = None,
    after_reading: bytes = b"",
) -> bytes:
    """POST ``body`` to the gateway's chat completions on a raw socket, read until ``after_reading`` has
    arrived (e.g. the second token of a stream), then close the socket as soon as ``until()`` is true (e.g.
    once the gateway holds credit for the request). Returns what was read."""
    host, _, rest = base_url.removeprefix("http://").partition(":")
    port, _, prefix = rest.partition("/")
    payload = json.dumps(body).encode()
    lines = [f"POST /{prefix}/chat/completions HTTP/1.1", f"host: {host}", f"content-length: {len(payload)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    received = b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        while after_reading not in received:
            part = sock.recv(65536)
            assert part, f"the gateway closed before sending {after_reading!r}: {received[-300:]!r}"
            received += part
        wait_until(until, "the moment to hang up never came", timeout_s=10)
    return received
