"""The lean HTTP/1.1 transport against the fake provider on loopback: keep-alive reuse, streaming, TLS, and
each failure raised as the ``httpx`` exception the adapters already map."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pointsman.gateway.testing import free_port
from pointsman.providers.fake import VOCAB, FakeConfig, FakeProviderServer, running_fake_provider
from pointsman.providers.transport import LeanTransport

pytestmark = pytest.mark.timeout(60)  # a hang fails fast instead of stalling the suite


BODY = {"model": "fake-model#tokens=4", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with running_fake_provider(FakeConfig()) as server:
        yield server


def test_replies_reuse_one_keep_alive_connection(fake: FakeProviderServer) -> None:
    async def run() -> tuple[list[str], int]:
        transport = LeanTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            texts = []
            for _ in range(3):
                resp = await client.post(fake.base_url + "/chat/completions", json=BODY)
                texts.append(resp.json()["choices"][0]["message"]["content"])
            return texts, sum(len(v) for v in transport._idle.values())

    texts, idle = asyncio.run(run())
    assert texts == ["".join(VOCAB[:4])] * 3
    assert idle == 1, "one connection, reused"


def test_streamed_chunked_body_arrives_in_pieces_and_whole(fake: FakeProviderServer) -> None:
    async def run() -> tuple[int, str]:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            body = {**BODY, "model": "fake-model#tokens=30&itl_ms=2", "stream": True}
            parts = []
            async with client.stream("POST", fake.base_url + "/chat/completions", json=body) as resp:
                async for part in resp.aiter_bytes():
                    parts.append(part)
            return len(parts), b"".join(parts).decode()

    count, text = asyncio.run(run())
    assert count > 5, "chunks are passed on as they arrive, not buffered"
    assert text.endswith("data: [DONE]\n\n")
    content = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in text.splitlines()
        if line.startswith("data: {")
    )
    assert content == "".join(VOCAB[i % len(VOCAB)] for i in range(30))


def test_a_connection_the_server_closed_is_not_reused(fake: FakeProviderServer) -> None:
    async def run() -> int:
        transport = LeanTransport()
        async with httpx.AsyncClient(transport=transport) as client:
            url = fake.base_url + "/chat/completions"
            await client.post(url, json=BODY, headers={"connection": "close"})  # the fake hangs up after it
            await asyncio.sleep(0.05)
            resp = await client.post(url, json=BODY)
            return resp.status_code

    assert asyncio.run(run()) == 200


@pytest.mark.parametrize(
    ("script", "error"),
    [("fault=refuse", httpx.RemoteProtocolError), ("fault=close_early", httpx.RemoteProtocolError)],
)
def test_broken_responses_raise_httpx_errors(
    fake: FakeProviderServer, script: str, error: type[Exception]
) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            resp = await client.post(
                fake.base_url + "/chat/completions", json={**BODY, "model": f"m#{script}"}
            )
            resp.raise_for_status()

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):  # a reset or a clean close mid-answer
        asyncio.run(run())


def test_refused_port_is_connect_error() -> None:
    async def run() -> None:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            await client.get(f"http://127.0.0.1:{free_port()}/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(run())


def test_read_timeout(fake: FakeProviderServer) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(transport=LeanTransport(), timeout=0.2) as client:
            body = {**BODY, "model": "m#fault=slow_first_byte&delay_ms=2000"}
            await client.post(fake.base_url + "/chat/completions", json=body)

    with pytest.raises(httpx.ReadTimeout):
        asyncio.run(run())


def test_pool_limit_waits_then_times_out(fake: FakeProviderServer) -> None:
    async def run() -> None:
        async with httpx.AsyncClient(
            transport=LeanTransport(max_connections=1), timeout=httpx.Timeout(5, pool=0.1)
        ) as client:
            url = fake.base_url + "/chat/completions"
            body = {**BODY, "model": "m#fault=slow_first_byte&delay_ms=1000"}
            await asyncio.gather(client.post(url, json=body), client.post(url, json=body))

    with pytest.raises(httpx.PoolTimeout):
        asyncio.run(run())


def test_unsupported_scheme() -> None:
    async def run() -> None:
        async with httpx.AsyncClient(transport=LeanTransport()) as client:
            await client.get("ftp://127.0.0.1/x")

    with pytest.raises(httpx.UnsupportedProtocol):
        asyncio.run(run())


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed; cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_https_with_verification(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    with running_fake_provider(ssl_context=server_ctx) as server:
        assert server.base_url.startswith("https://")

        async def call(ctx: ssl.SSLContext | None) -> int:
            async with httpx.AsyncClient(transport=LeanTransport(ssl_context=ctx)) as client:
                resp = await client.post(server.base_url + "/chat/completions", json=BODY)
                return resp.status_code

        assert asyncio.run(call(ssl.create_default_context(cafile=str(cert)))) == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(call(None))  # the default roots do not trust a self-signed certificate
