"""A lean HTTP/1.1 transport for the shared ``httpx.AsyncClient``: keep-alive connections over asyncio streams,
responses parsed by ``httptools`` (the C parser uvicorn uses).

``httpx``'s default transport (httpcore + h11, pure Python) costs about 0.7 ms of CPU per request on the
development machine and more per streamed chunk; this one does the same job in a fraction of that, which is
most of the gateway's own overhead. It speaks HTTP/1.1 only (what provider APIs serve), over TCP or TLS, and
raises ``httpx``'s own exceptions so the adapters' error mapping is unchanged. It never retries: a pooled
connection the server has closed is detected before reuse, and anything that fails mid-request is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

import httptools
import httpx

__all__ = ["CookielessClient", "LeanTransport"]

_READ_SIZE = 65536


class _Parser:
    """httptools callbacks collected into plain fields."""

    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.body: list[bytes] = []
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.headers_done = True
        self.keep_alive = self.parser.should_keep_alive()  # only meaningful inside a callback

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete = True

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise httpx.RemoteProtocolError(f"malformed HTTP response: {exc}") from exc

    def take_body(self) -> list[bytes]:
        body, self.body = self.body, []
        return body


class _Connection:
    def __init__(
        self, key: tuple[str, str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.key = key
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


async def _read(conn: _Connection, timeout: float | None) -> bytes:
    try:
        async with asyncio.timeout(timeout):
            return await conn.reader.read(_READ_SIZE)
    except TimeoutError as exc:
        raise httpx.ReadTimeout("timed out reading the response") from exc
    except (ConnectionError, OSError) as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__) from exc


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives; the connection goes back to the pool once the message is complete."""

    def __init__(
        self, transport: LeanTransport, conn: _Connection, parser: _Parser, read_timeout: float | None
    ) -> None:
        self.transport = transport
        self.conn: _Connection | None = conn
        self.parser = parser
        self.read_timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn, parser = self.conn, self.parser
        if conn is None:
            return
        for part in parser.take_body():
            yield part
        while not parser.complete:
            data = await _read(conn, self.read_timeout)
            if not data:
                parser.feed(b"")  # lets the parser finish a body delimited by the connection's end
                if not parser.complete:
                    raise httpx.RemoteProtocolError(
                        "peer closed connection without sending complete message body"
                    )
            else:
                parser.feed(data)
            for part in parser.take_body():
                yield part
        self._release(reusable=parser.keep_alive)

    async def aclose(self) -> None:
        self._release(reusable=False)

    def _release(self, *, reusable: bool) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            self.transport._release(conn, reusable=reusable and self.parser.complete)


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with a keep-alive pool per (scheme, host, port); at most ``max_connections`` in use at once."""

    def __init__(self, *, max_connections: int = 1000, ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_connections = max_connections
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._slots: asyncio.Semaphore | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:  # the CA bundle httpx itself uses, so both transports trust the same roots
            import certifi

            self._ssl = ssl.create_default_context(cafile=certifi.where())
        return self._ssl

    async def _connect(self, key: tuple[str, str, int], timeout: float | None) -> _Connection:
        scheme, host, port = key
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(
                    host,
                    port,
                    ssl=self._ssl_context() if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                    limit=1 << 22,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return _Connection(key, reader, writer)

    def _release(self, conn: _Connection, *, reusable: bool) -> None:
        if reusable and conn.usable():
            self._idle.setdefault(conn.key, []).append(conn)
        else:
            conn.close()
        if self._slots is not None:
            self._slots.release()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"the URL scheme {scheme!r} is not supported; use http or https")
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_connections)
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise httpx.PoolTimeout("no free connection in the pool") from exc
        try:
            return await self._exchange(request, key, timeouts)
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(
        self, request: httpx.Request, key: tuple[str, str, int], timeouts: dict[str, Any]
    ) -> httpx.Response:
        conn = None
        idle = self._idle.get(key)
        while idle:
            candidate = idle.pop()
            if candidate.usable():
                conn = candidate
                break
            candidate.close()
        if conn is None:
            conn = await self._connect(key, timeouts.get("connect"))
        try:
            body = await request.aread()
            target = request.url.raw_path.decode("ascii")
            lines = [f"{request.method} {target} HTTP/1.1".encode()]
            headers = request.headers.raw
            if not any(k.lower() == b"content-length" for k, _ in headers) and body:
                headers = [*headers, (b"content-length", str(len(body)).encode())]
            lines += [k + b": " + v for k, v in headers]
            conn.writer.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
            try:
                async with asyncio.timeout(timeouts.get("write")):
                    await conn.writer.drain()
            except TimeoutError as exc:
                raise httpx.WriteTimeout("timed out sending the request") from exc
            except (ConnectionError, OSError) as exc:
                raise httpx.WriteError(str(exc) or type(exc).__name__) from exc
            parser = _Parser()
            while not parser.headers_done:
                data = await _read(conn, timeouts.get("read"))
                if not data:
                    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
                parser.feed(data)
            status = parser.parser.get_status_code()
            stream = _Body(self, conn, parser, timeouts.get("read"))
        except BaseException:
            conn.close()
            raise
        return httpx.Response(
            status, headers=parser.headers, stream=stream, extensions={"http_version": b"HTTP/1.1"}
        )

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


class _NoCookies(httpx.Cookies):
    """A jar that stays empty: ``Set-Cookie`` from upstream is ignored."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class CookielessClient(httpx.AsyncClient):
    """The gateway's shared upstream client: an ``httpx.AsyncClient`` that keeps no cookies.

    One client serves every user, so a cookie a provider sets (load-balancer affinity, bot checks) would be
    stored once and sent on every later request, whoever makes it. Provider APIs authenticate by key, never
    by cookie; skipping the jar also saves httpx's cookie parsing on every response (~30 µs)."""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs.get("cookies"):
            raise ValueError("the gateway's upstream client keeps no cookies; send them as a header instead")
        super().__init__(**kwargs)
        self._empty_jar = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._empty_jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        if cookies:
            raise ValueError("the gateway's upstream client keeps no cookies; send them as a header instead")
