"""The fake provider as a server: every connection it accepts is closed on its own event loop when the client
leaves, never left to the garbage collector.

That is what made requests to the in-thread fake go unanswered now and then: a connection the client had
closed stayed open on the server until the garbage collector, run by the test's own thread, closed it — and
dropped its (by then reused) fd number from the server loop's selector, unwatching a new connection whose
request was then never read. ``scripts/stress_fake_provider.py`` reproduces the hang itself (minutes, under
CPU load); this checks the cause directly.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from pointsman.providers.fake import FakeConfig, FakeProviderServer, running_fake_provider

pytestmark = pytest.mark.timeout(60)

STREAM_BODY = (
    b'{"model": "fake-model#tokens=3", "stream": true, "messages": [{"role": "user", "content": "x"}]}'
)
REQUESTS = {
    "after a reply": b"GET /healthz HTTP/1.1\r\nhost: fake\r\n\r\n",
    "after a stream": b"POST /v1/chat/completions HTTP/1.1\r\nhost: fake\r\ncontent-length: %d\r\n\r\n%s"
    % (len(STREAM_BODY), STREAM_BODY),
    "before any request": b"",
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with running_fake_provider(FakeConfig()) as server:
        yield server


def _read_reply(sock: socket.socket, request: bytes) -> bytes:
    """Everything the server sends for ``request`` up to the end of its reply."""
    end = b"0\r\n\r\n" if b"stream" in request else b'{"status": "ok"}'
    data = b""
    while not data.endswith(end):
        part = sock.recv(65536)
        assert part, f"the server closed before the end of its reply: {data[-200:]!r}"
        data += part
    return data


@pytest.mark.parametrize("when", list(REQUESTS))
def test_server_closes_its_end_as_soon_as_the_client_leaves(fake: FakeProviderServer, when: str) -> None:
    request = REQUESTS[when]
    with socket.create_connection((fake.host, fake.port), timeout=10) as sock:
        if request:
            sock.sendall(request)
            assert b" 200 OK" in _read_reply(sock, request)
        sock.shutdown(socket.SHUT_WR)  # the client is done: the server reads EOF
        try:
            rest = sock.recv(1024)
        except TimeoutError:
            pytest.fail("the server kept the connection open after the client left (CLOSE-WAIT)")
    assert rest == b"", "nothing after the reply, then the server's own close"
    deadline = time.monotonic() + 10
    while fake._writers and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not fake._writers, "the server still tracks the connection"
