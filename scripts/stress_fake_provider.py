"""Stress the fake provider the way the tests use it, to reproduce "a request is never answered".

Many short client event loops (``asyncio.run`` per request, a fresh client each time, as the adapter tests do)
plus bursts of concurrent streams over one shared client, against the fake provider served either from a
thread of this process (``running_fake_provider``) or as its own process (``pointsman fake-provider``), while
``--load`` busy-loop processes compete for the CPU. A request that takes longer than ``--hang-s`` counts as a
hang; the first few hangs print what every thread of this process was doing and the sockets' queues.

    nice -n 10 .venv/bin/python scripts/stress_fake_provider.py --mode thread --rounds 300 --load 2
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from pointsman.gateway.testing import free_port
from pointsman.providers.fake import FakeConfig, FakeProviderServer, running_fake_provider
from pointsman.providers.transport import LeanTransport

SERVERS: list[FakeProviderServer] = []  # the in-thread server, for the hang report
BODY = {"model": "fake-model#tokens=6", "messages": [{"role": "user", "content": "hello there"}]}


def _busy(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


@contextmanager
def cpu_load(processes: int, seconds: float) -> Iterator[None]:
    """``processes`` busy loops (at most ``seconds`` long, so a crash of this script cannot leave them)."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_busy, args=(time.monotonic() + seconds,)) for _ in range(processes)]
    for p in procs:
        p.start()
    try:
        yield
    finally:
        for p in procs:
            p.terminate()
            p.join()


@contextmanager
def fake_server(mode: str) -> Iterator[str]:
    """The fake provider's base URL, served from a thread of this process or from its own process."""
    if mode == "thread":
        with running_fake_provider(FakeConfig(tokens=6)) as server:
            SERVERS.append(server)
            yield server.base_url
        return
    port = free_port()
    launch = "import sys; from pointsman.cli import main; sys.argv[0] = 'pointsman'; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", launch, "fake-provider", "--port", str(port), "--tokens", "6"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(10)


def _client(transport: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=LeanTransport() if transport == "lean" else None, timeout=None)


async def _one(client: httpx.AsyncClient, base_url: str, stream: bool) -> None:
    body = {**BODY, "stream": stream}
    if stream:
        async with client.stream("POST", base_url + "/chat/completions", json=body) as resp:
            data = b"".join([part async for part in resp.aiter_bytes()])
        assert data.endswith(b"data: [DONE]\n\n"), data[-80:]
    else:
        resp = await client.post(base_url + "/chat/completions", json=body)
        assert resp.json()["choices"], resp.text


async def _round(base_url: str, transport: str, concurrency: int, hang_s: float, index: int) -> bool:
    """One fresh client per round (like one test): a sequential request, then ``concurrency`` streams.
    True when the round hung; what was stuck is printed before the round is cancelled."""

    async def work(client: httpx.AsyncClient) -> None:
        await _one(client, base_url, stream=index % 2 == 0)
        await asyncio.gather(*(_one(client, base_url, True) for _ in range(concurrency)))

    async with _client(transport) as client:
        task = asyncio.create_task(work(client))
        done, _ = await asyncio.wait({task}, timeout=hang_s)
        if done:
            task.result()
            return False
        _dump(int(base_url.rsplit(":", 1)[1].split("/")[0]))
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True


def _dump(port: int) -> None:
    server = SERVERS[0] if SERVERS else None
    if server is not None:  # thread mode: which open connections the server's event loop still watches
        registered = _server_loop()._selector.get_map()
        for writer in list(server._writers):
            fd = writer.transport.get_extra_info("socket").fileno()
            peer = writer.get_extra_info("peername")
            key = registered.get(fd)
            print(
                f"server connection fd={fd} peer={peer} watched={key.events if key else None}",
                file=sys.stderr,
            )
    print("--- threads ---", file=sys.stderr)
    for ident, frame in sys._current_frames().items():
        print(f"thread {ident}:", "".join(traceback.format_stack(frame)[-6:]), file=sys.stderr)
    out = subprocess.run(["ss", "-tnoi", f"( sport = :{port} or dport = :{port} )"], capture_output=True)
    print("--- sockets ---\n" + out.stdout.decode(), file=sys.stderr)


def _server_loop() -> Any:
    assert SERVERS and SERVERS[0]._server is not None, "the in-thread fake is not running"
    return SERVERS[0]._server.get_loop()


def trace_foreign_closes() -> Counter[str]:
    """Count transports of the fake's event loop closed from another thread, and how many of those had
    already lost their socket (the fd number then names whatever socket got it next)."""
    from asyncio import selector_events

    seen: Counter[str] = Counter()
    transport_class: Any = getattr(selector_events, "_SelectorTransport")  # noqa: B009 (private, untyped)
    original = transport_class.close

    def close(self: Any) -> None:
        foreign = threading.current_thread().name != "fake-provider"
        if foreign and SERVERS and self._loop is _server_loop():
            seen["closed from another thread"] += 1
            if self._sock.fileno() == -1:
                seen["... after its socket was closed (stale fd number)"] += 1
        original(self)

    transport_class.close = close
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["thread", "process"], default="thread")
    parser.add_argument("--transport", choices=["lean", "httpx"], default="lean")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--load", type=int, default=2, help="busy-loop processes (one per core)")
    parser.add_argument("--hang-s", type=float, default=10.0)
    parser.add_argument(
        "--trace", action="store_true", help="count foreign-thread closes of server transports"
    )
    args = parser.parse_args(argv)
    traced = trace_foreign_closes() if args.trace else None
    hangs = 0
    started = time.monotonic()
    with cpu_load(args.load, seconds=3600), fake_server(args.mode) as base_url:
        for i in range(args.rounds):
            if asyncio.run(_round(base_url, args.transport, args.concurrency, args.hang_s, i)):
                hangs += 1
                print(f"round {i}: no answer within {args.hang_s} s", file=sys.stderr)
    elapsed = time.monotonic() - started
    print(
        f"mode={args.mode} transport={args.transport} rounds={args.rounds} concurrency={args.concurrency} "
        f"load={args.load}: {hangs} hung rounds in {elapsed:.0f} s"
    )
    if traced is not None:
        print(dict(traced) or "no server transport was closed from another thread")
    return 1 if hangs else 0


if __name__ == "__main__":
    sys.exit(main())
