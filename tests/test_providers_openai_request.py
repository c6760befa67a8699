"""What the OpenAI-compatible adapter puts on the wire, seen by a loopback server: the path under the base URL,
the provider's model id, the key, our user agent, the per-endpoint headers, and nothing from a cookie jar.
The adapter builds its requests itself (not through ``client.build_request``), so this pins that down."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pointsman.providers.base import Timeouts, Upstream
from pointsman.providers.openai import OpenAIProvider
from pointsman.providers.transport import CookielessClient, LeanTransport

pytestmark = pytest.mark.timeout(60)

REPLY = {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": "hi"}}]}
CHUNK = {"id": "x", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "hi"}}]}


async def _recording_server() -> tuple[asyncio.Server, list[tuple[str, dict[str, str], Any]]]:
    seen: list[tuple[str, dict[str, str], Any]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                headers = {
                    k.lower(): v for k, v in (line.split(": ", 1) for line in head[1:] if ": " in line)
                }
                body = json.loads(await reader.readexactly(int(headers["content-length"])))
                seen.append((head[0], headers, body))
                if body.get("stream"):
                    events = f"data: {json.dumps(CHUNK)}\n\ndata: [DONE]\n\n".encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nset-cookie: a=b\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(events), events)
                    )
                else:
                    payload = json.dumps(REPLY).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nset-cookie: a=b\r\n"
                        b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
                    )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0), seen


def test_reply_and_stream_requests_on_the_wire() -> None:
    async def run() -> tuple[list[tuple[str, dict[str, str], Any]], dict[str, Any], list[dict[str, Any]]]:
        server, seen = await _recording_server()
        port = server.sockets[0].getsockname()[1]
        upstream = Upstream(
            "m@p",
            f"http://127.0.0.1:{port}/v1/",  # a trailing slash is not doubled
            "provider-model-id",
            "P_KEY",
            "sk-test",
            {"x-extra": "1"},
        )
        body = {"model": "m@p", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
        async with server, CookielessClient(transport=LeanTransport(), trust_env=False) as client:
            provider = OpenAIProvider(client)
            reply = await provider.send(upstream, body, Timeouts())
            chunks = [c async for c in provider.stream(upstream, body, Timeouts())]
            reply_again = await provider.send(upstream, body, Timeouts())
            assert reply_again == reply
            server.close()
        return seen, reply, chunks

    seen, reply, chunks = asyncio.run(run())
    assert reply == REPLY
    assert chunks == [CHUNK]
    assert [line for line, _, _ in seen] == ["POST /v1/chat/completions HTTP/1.1"] * 3
    for _, headers, _ in seen:
        assert headers["authorization"] == "Bearer sk-test"
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("pointsman/")
        assert headers["x-extra"] == "1"
        assert "cookie" not in headers
    (_, _, sent), (_, _, streamed), _ = seen
    assert sent["model"] == "provider-model-id" and sent["messages"] == [{"role": "user", "content": "hi"}]
    assert sent["stream"] is False and "stream_options" not in sent
    assert streamed["stream"] is True and streamed["stream_options"] == {"include_usage": True}
    assert streamed["model"] == "provider-model-id" and streamed["max_tokens"] == 5
