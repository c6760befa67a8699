"""The gateway's shared upstream client keeps no cookies: what one provider response sets is never sent on a
later request (which may be another user's), over the lean transport and over httpx's own."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pointsman.providers.transport import CookielessClient, LeanTransport

pytestmark = pytest.mark.timeout(60)


async def _cookie_server() -> tuple[asyncio.Server, list[str | None]]:
    """A loopback HTTP/1.1 server that sets a cookie on every answer and records the Cookie header it got."""
    received: list[str | None] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:] if ": " in line
                )
                lowered = {k.lower(): v for k, v in headers.items()}
                await reader.readexactly(int(lowered.get("content-length", "0")))
                received.append(lowered.get("cookie"))
                body = b'{"ok": true}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"set-cookie: affinity=user-one; Path=/\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, received


@pytest.mark.parametrize("lean", [True, False], ids=["lean-transport", "httpx-transport"])
def test_set_cookie_from_upstream_is_never_sent_back(lean: bool) -> None:
    async def run() -> tuple[list[str | None], list[str | None], int]:
        server, received = await _cookie_server()
        port = server.sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        transport = LeanTransport() if lean else None
        async with server:
            async with CookielessClient(transport=transport, trust_env=False) as client:
                for _ in range(3):
                    resp = await client.post(url, content=b"{}")
                    assert resp.json() == {"ok": True}
                jar = len(client.cookies)
            async with httpx.AsyncClient(transport=transport, trust_env=False) as plain:  # the control
                for _ in range(2):
                    await plain.post(url, content=b"{}")
            server.close()
        return received[:3], received[3:], jar

    cookieless, plain, jar = asyncio.run(run())
    assert cookieless == [None, None, None]
    assert jar == 0
    assert plain == [None, "affinity=user-one"], "a plain httpx client would have replayed the cookie"


def test_cookies_cannot_be_given_to_the_client() -> None:
    with pytest.raises(ValueError, match="keeps no cookies"):
        CookielessClient(cookies={"session": "x"})
    client = CookielessClient()
    with pytest.raises(ValueError, match="keeps no cookies"):
        client.cookies = {"session": "x"}
    client.cookies = None  # clearing is harmless
    assert len(client.cookies) == 0
