"""The fake provider: a real OpenAI-compatible and Anthropic-compatible HTTP/1.1 server for tests, demos and
benchmarks, with scripted faults.

It is a small asyncio server rather than a web framework so that it can misbehave precisely: close a
connection without answering, stop a chunked body without ``[DONE]``, cut one event into several writes in the
middle of a UTF-8 character, or stall. It answers:

- ``POST /v1/chat/completions`` (OpenAI, streaming and not, ``stream_options.include_usage`` honoured)
- ``POST /v1/messages`` (Anthropic Messages, streaming and not)
- ``GET /v1/models``, ``GET /healthz``
- ``GET /_fake/stats`` (requests counted per script key) and ``POST /_fake/reset``

**Scripts.** A request picks its behaviour with a suffix on the model name, ``fake-model#fault=429&tokens=5``,
or with the header ``x-fake-script: fault=429&tokens=5`` (the header wins). Keys: ``fault`` (one of
``FAULTS``), ``tokens`` (answer length), ``ttft_ms``, ``itl_ms``, ``after`` (tokens sent before a mid-stream
fault), ``fail_first`` (apply the fault only to the first N requests of this key, then answer normally),
``retry_after`` (seconds, for 429), ``delay_ms`` (for slow_first_byte and stall), ``huge_bytes``, ``tag`` (a
free label, so equal scripts can be counted apart). Requests are
counted per key: the ``x-fake-key`` header, else the model name as sent plus the header script.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import parse_qsl

__all__ = ["FAULTS", "FakeConfig", "FakeProviderServer", "Script", "running_fake_provider"]

FAULTS = (
    "429",  # 429 with Retry-After
    "500",
    "503",
    "refuse",  # close the connection without answering
    "slow_first_byte",  # wait delay_ms before the status line
    "stall",  # stream `after` tokens, then go silent for delay_ms
    "close_early",  # stream `after` tokens, then end the body without [DONE] / message_stop
    "malformed",  # stream `after` tokens, then an event that is not JSON
    "split",  # every event written in several pieces, cut mid-JSON and mid-UTF-8
    "no_usage",  # never report usage
    "huge_chunk",  # one delta of huge_bytes characters
)

# Words of the generated answer: ASCII and multi-byte characters, so byte splits land inside characters.
VOCAB = (" Hello", " from", " the", " fake", " provider", " —", " café", " ✓", " 🚀", " naïve", " 東京")


@dataclass(frozen=True)
class FakeConfig:
    """Server-wide defaults; each request's script can override the first five."""

    ttft_s: float = 0.0
    itl_s: float = 0.0
    tokens: int = 16
    retry_after_s: float = 1.0
    delay_s: float = 30.0
    huge_bytes: int = 1 << 20
    require_key: str | None = None  # when set, requests must send it (Bearer or x-api-key)


@dataclass(frozen=True)
class Script:
    fault: str | None = None
    tokens: int = 16
    ttft_s: float = 0.0
    itl_s: float = 0.0
    after: int = 2
    fail_first: int | None = None
    retry_after_s: float = 1.0
    delay_s: float = 30.0
    huge_bytes: int = 1 << 20

    @classmethod
    def parse(cls, text: str, config: FakeConfig) -> Script:
        script = cls(
            tokens=config.tokens,
            ttft_s=config.ttft_s,
            itl_s=config.itl_s,
            retry_after_s=config.retry_after_s,
            delay_s=config.delay_s,
            huge_bytes=config.huge_bytes,
        )
        changes: dict[str, Any] = {}
        for key, value in parse_qsl(text, keep_blank_values=True):
            if key == "fault":
                if value not in FAULTS:
                    raise ValueError(f"unknown fault {value!r}; known: {', '.join(FAULTS)}")
                changes["fault"] = value
            elif key in ("tokens", "after", "fail_first", "huge_bytes"):
                changes[key] = int(value)
            elif key in ("ttft_ms", "itl_ms", "delay_ms"):
                changes[key[:-3] + "_s"] = float(value) / 1000
            elif key == "retry_after":
                changes["retry_after_s"] = float(value)
            elif key == "tag":
                pass  # a free label: makes otherwise equal scripts count under different keys
            else:
                raise ValueError(f"unknown script key {key!r}")
        return replace(script, **changes)


def _answer(n: int) -> list[str]:
    return [VOCAB[i % len(VOCAB)] for i in range(n)]


def _count_tokens(body: dict[str, Any]) -> int:
    """A deterministic stand-in for a tokenizer: about four characters per token, plus framing per message."""
    total = 0
    for msg in body.get("messages") or []:
        content = msg.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        total += 4 + len(str(content or "")) // 4
    system = body.get("system")
    if isinstance(system, str):
        total += len(system) // 4
    return max(total, 1)


class _Conn:
    """One client connection: writes HTTP/1.1 responses, chunked or not."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    def head(self, status: int, headers: dict[str, str]) -> bytes:
        reason = {
            200: "OK",
            400: "Bad Request",
            401: "Unauthorized",
            404: "Not Found",
            429: "Too Many Requests",
        }
        lines = [f"HTTP/1.1 {status} {reason.get(status, 'Error')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    async def json(self, status: int, payload: Any, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        headers = {"content-type": "application/json", "content-length": str(len(body)), **(extra or {})}
        self.writer.write(self.head(status, headers) + body)
        await self.writer.drain()

    async def start_stream(self) -> None:
        headers = {
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "transfer-encoding": "chunked",
        }
        self.writer.write(self.head(200, headers))

    async def chunk(self, data: bytes) -> None:
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await self.writer.drain()

    async def end_stream(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()

    def abort(self) -> None:
        """Close with a TCP reset, like a crashed server."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


class _Abort(Exception):
    """Raised inside a handler to drop the connection."""


class FakeProviderServer:
    """The fake provider. ``await start()`` then ``base_url``; ``stats`` counts requests per script key."""

    def __init__(
        self,
        config: FakeConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = config or FakeConfig()
        self.host = host
        self.port = port
        self.ssl_context = ssl_context  # serve HTTPS with this context
        self.stats: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def base_url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/v1"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=1 << 24, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    # --- HTTP plumbing --------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = _Conn(writer)
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, path, _ = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                await self._route(conn, method, path.split("?")[0], headers, body)
                if headers.get("connection", "").lower() == "close":
                    break
        except _Abort:
            conn.abort()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        except asyncio.CancelledError:  # the server is shutting down: this connection's task ends here
            pass
        finally:
            self._writers.discard(writer)
            # Close on this loop, on every way out. A connection left open here (as a client's disconnect
            # once did) is closed later by the garbage collector in whichever thread collects it: with the
            # server on a thread, the test's own thread would then drop a stale fd number from this loop's
            # selector and silently unwatch the new connection that reused the number: a request never read.
            writer.close()

    async def _route(self, conn: _Conn, method: str, path: str, headers: dict[str, str], raw: bytes) -> None:
        if method == "GET" and path == "/_fake/stats":
            await conn.json(200, {"total": sum(self.stats.values()), "by_key": dict(self.stats)})
        elif method == "POST" and path == "/_fake/reset":
            self.stats.clear()
            await conn.json(200, {"ok": True})
        elif method == "GET" and path in ("/healthz", "/health"):
            await conn.json(200, {"status": "ok"})
        elif method == "GET" and path == "/v1/models":
            await conn.json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        elif method == "POST" and path in ("/v1/chat/completions", "/v1/messages"):
            await self._chat(conn, path.endswith("/messages"), headers, raw)
        else:
            await conn.json(404, {"error": {"message": f"no route {method} {path}", "type": "not_found"}})

    # --- chat -----------------------------------------------------------------------------------------------

    async def _chat(self, conn: _Conn, anthropic: bool, headers: dict[str, str], raw: bytes) -> None:
        fmt = _Anthropic() if anthropic else _OpenAI()
        try:
            body = json.loads(raw)
            model = str(body["model"])
            _, _, model_script = model.partition("#")
            header_script = headers.get("x-fake-script", "")
            script = Script.parse(header_script or model_script, self.config)
        except (ValueError, KeyError, TypeError) as exc:
            await conn.json(400, fmt.error(400, f"bad request: {exc}"))
            return
        key = headers.get("x-fake-key") or (model + (f"|{header_script}" if header_script else ""))
        self.stats[key] += 1
        if self.config.require_key is not None:
            sent = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
            if sent != self.config.require_key:
                await conn.json(401, fmt.error(401, "invalid api key"))
                return
        fault = script.fault
        if script.fail_first is not None and self.stats[key] > script.fail_first:
            fault = None
        if fault in ("429", "500", "503"):
            status = int(fault)
            extra = {"retry-after": f"{script.retry_after_s:g}"} if status == 429 else {}
            await conn.json(status, fmt.error(status, f"scripted fault {fault}"), extra)
            return
        if fault == "refuse":
            raise _Abort
        if fault == "slow_first_byte":
            await asyncio.sleep(script.delay_s)
        max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
        n = script.tokens if not max_tokens else min(script.tokens, int(max_tokens))
        words = _answer(n)
        if fault == "huge_chunk":
            words.append(" " + "x" * script.huge_bytes)
        finish = "length" if max_tokens and script.tokens > int(max_tokens) else "stop"
        usage = None if fault == "no_usage" else (_count_tokens(body), len(words))
        reply_model = model.partition("#")[0]
        if not body.get("stream"):
            await self._reply(conn, fmt, fault, script, reply_model, words, finish, usage)
        else:
            want_usage = anthropic or bool((body.get("stream_options") or {}).get("include_usage"))
            await self._stream(
                conn, fmt, fault, script, reply_model, words, finish, usage if want_usage else None
            )

    async def _reply(
        self,
        conn: _Conn,
        fmt: _Format,
        fault: str | None,
        script: Script,
        model: str,
        words: list[str],
        finish: str,
        usage: tuple[int, int] | None,
    ) -> None:
        await asyncio.sleep(script.ttft_s + script.itl_s * max(len(words) - 1, 0))
        payload = json.dumps(fmt.reply(model, "".join(words), finish, usage)).encode()
        if fault == "stall":
            await asyncio.sleep(script.delay_s)
        if fault == "malformed":
            payload = payload[: len(payload) // 2]
        head = conn.head(200, {"content-type": "application/json", "content-length": str(len(payload))})
        if fault == "close_early":
            conn.writer.write(head + payload[: len(payload) // 2])
            await conn.writer.drain()
            raise _Abort
        if fault == "split":
            conn.writer.write(head)
            for piece in _pieces(payload):
                conn.writer.write(piece)
                await conn.writer.drain()
                await asyncio.sleep(0.001)
            return
        conn.writer.write(head + payload)
        await conn.writer.drain()

    async def _stream(
        self,
        conn: _Conn,
        fmt: _Format,
        fault: str | None,
        script: Script,
        model: str,
        words: list[str],
        finish: str,
        usage: tuple[int, int] | None,
    ) -> None:
        async def send(data: bytes) -> None:
            if fault == "split":
                for piece in _pieces(data):
                    await conn.chunk(piece)
                    await asyncio.sleep(0.001)
            else:
                await conn.chunk(data)

        await conn.start_stream()
        ident = uuid.uuid4().hex[:24]
        for event in fmt.opening(ident, model, usage):
            await send(event)
        for i, word in enumerate(words):
            await asyncio.sleep(script.ttft_s if i == 0 else script.itl_s)
            if i == script.after and fault in ("stall", "close_early", "malformed"):
                if fault == "stall":
                    await asyncio.sleep(script.delay_s)
                elif fault == "close_early":
                    await conn.end_stream()
                    return
                else:
                    await send(b'data: {"choices": [{"delta": {"content": "oops"\n\n')
            await send(fmt.delta(ident, model, word))
        for event in fmt.closing(ident, model, finish, usage):
            await send(event)
        await conn.end_stream()


def _pieces(data: bytes) -> list[bytes]:
    """``data`` cut in three: inside the first multi-byte character (if any) and in the middle of the rest."""
    cut = next((i + 1 for i, b in enumerate(data) if b >= 0xC0), len(data) // 3) or 1
    middle = cut + max((len(data) - cut) // 2, 1)
    return [p for p in (data[:cut], data[cut:middle], data[middle:]) if p]


def _sse(payload: Any, event: str | None = None) -> bytes:
    text = json.dumps(payload, ensure_ascii=False)
    return (f"event: {event}\n" if event else "").encode() + b"data: " + text.encode() + b"\n\n"


class _Format:
    def error(self, status: int, message: str) -> dict[str, Any]:
        raise NotImplementedError

    def reply(self, model: str, text: str, finish: str, usage: tuple[int, int] | None) -> dict[str, Any]:
        raise NotImplementedError

    def opening(self, ident: str, model: str, usage: tuple[int, int] | None) -> list[bytes]:
        raise NotImplementedError

    def delta(self, ident: str, model: str, text: str) -> bytes:
        raise NotImplementedError

    def closing(self, ident: str, model: str, finish: str, usage: tuple[int, int] | None) -> list[bytes]:
        raise NotImplementedError


class _OpenAI(_Format):
    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = {429: "rate_limit_exceeded", 401: "invalid_api_key", 400: "invalid_request_error"}
        return {
            "error": {
                "message": message,
                "type": kind.get(status, "server_error"),
                "param": None,
                "code": None,
            }
        }

    def _usage(self, usage: tuple[int, int]) -> dict[str, int]:
        return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}

    def reply(self, model: str, text: str, finish: str, usage: tuple[int, int] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            ],
        }
        if usage is not None:
            out["usage"] = self._usage(usage)
        return out

    def _chunk(
        self, ident: str, model: str, delta: dict[str, Any], finish: str | None = None
    ) -> dict[str, Any]:
        return {
            "id": "chatcmpl-" + ident,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def opening(self, ident: str, model: str, usage: tuple[int, int] | None) -> list[bytes]:
        return [_sse(self._chunk(ident, model, {"role": "assistant", "content": ""}))]

    def delta(self, ident: str, model: str, text: str) -> bytes:
        return _sse(self._chunk(ident, model, {"content": text}))

    def closing(self, ident: str, model: str, finish: str, usage: tuple[int, int] | None) -> list[bytes]:
        events = [_sse(self._chunk(ident, model, {}, finish))]
        if usage is not None:
            last = self._chunk(ident, model, {})
            last["choices"] = []
            last["usage"] = self._usage(usage)
            events.append(_sse(last))
        return [*events, b"data: [DONE]\n\n"]


class _Anthropic(_Format):
    STOP: ClassVar[dict[str, str]] = {"stop": "end_turn", "length": "max_tokens"}

    def error(self, status: int, message: str) -> dict[str, Any]:
        kind = {429: "rate_limit_error", 401: "authentication_error", 400: "invalid_request_error"}
        kind.update({503: "overloaded_error"})
        return {"type": "error", "error": {"type": kind.get(status, "api_error"), "message": message}}

    def reply(self, model: str, text: str, finish: str, usage: tuple[int, int] | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": self.STOP[finish],
            "stop_sequence": None,
        }
        if usage is not None:
            out["usage"] = {"input_tokens": usage[0], "output_tokens": usage[1]}
        return out

    def opening(self, ident: str, model: str, usage: tuple[int, int] | None) -> list[bytes]:
        message: dict[str, Any] = {
            "id": "msg_" + ident,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
        }
        message.update({"stop_reason": None, "stop_sequence": None})
        if usage is not None:
            message["usage"] = {"input_tokens": usage[0], "output_tokens": 1}
        return [
            _sse({"type": "message_start", "message": message}, "message_start"),
            _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                 "content_block_start"),
            _sse({"type": "ping"}, "ping"),
        ]  # fmt: skip

    def delta(self, ident: str, model: str, text: str) -> bytes:
        payload = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        return _sse(payload, "content_block_delta")

    def closing(self, ident: str, model: str, finish: str, usage: tuple[int, int] | None) -> list[bytes]:
        delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": self.STOP[finish]}}
        if usage is not None:
            delta["usage"] = {"output_tokens": usage[1]}
        return [
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse(delta, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ]


@contextlib.contextmanager
def running_fake_provider(
    config: FakeConfig | None = None, *, port: int = 0, ssl_context: ssl.SSLContext | None = None
) -> Iterator[FakeProviderServer]:
    """Run a fake provider on loopback in a background thread (its own event loop) for the ``with`` block."""
    server = FakeProviderServer(config, port=port, ssl_context=ssl_context)
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.close())
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    thread = threading.Thread(target=run, name="fake-provider", daemon=True)
    thread.start()
    if not ready.wait(60):
        raise TimeoutError("the fake provider did not start within 60 s")
    if failure:
        raise failure[0]
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
