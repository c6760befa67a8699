"""A light HTTP/1.1 load generator for benchmarks/gateway.py: raw keep-alive connections parsed by ``httptools``,
and a multi-process runner that keeps N streams in flight against one target at a time.

One Python process cannot drive 64 streams and time them honestly on a small machine: its own event loop
queues behind the work, and the figures become the client's. So ``run_load`` spreads the streams over several
client processes (each a uvloop with a few streams), runs rounds in lockstep (a barrier before and after each
round, every process on the same target), and merges the samples in the parent. Rounds alternate targets, so
slow drift of the machine's load hits every target alike. Each round:

- streams start staggered over one expected stream duration (``ramp_s``) so they do not tick in lockstep;
- a stream sends requests back to back until the round's deadline; only requests *started* after the ramp are
  recorded, so the recorded ones all ran with the full number of streams in flight;
- the parent reads the CPU time of every process it was given (gateway, fake provider, ...) and of the clients
  at each barrier, and the machine's busy time from ``/proc/stat``, so a reader can tell whether the machine
  (rather than the target) was the bottleneck.

The client's own cost per stream is a few tens of microseconds, the same for every target.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httptools

__all__ = [
    "CONTENT",
    "Client",
    "LoadResult",
    "Request",
    "cpu_seconds",
    "machine_busy",
    "run_load",
    "run_queue_wait",
]

CONTENT = re.compile(rb'"content":\s*"[^"]')  # the first chunk carrying non-empty content


@dataclass(frozen=True)
class Request:
    """One prepared request: where it goes and its bytes on the wire (HTTP/1.1, keep-alive)."""

    host: str
    port: int
    raw: bytes

    @classmethod
    def build(cls, url: str, body: bytes, headers: dict[str, str] | None = None) -> Request:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        lines = [
            f"POST {parts.path} HTTP/1.1",
            f"host: {host}:{port}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            *(f"{k}: {v}" for k, v in (headers or {}).items()),
        ]
        return cls(host, port, ("\r\n".join(lines) + "\r\n\r\n").encode() + body)


class HTTPFailure(Exception):
    """A status other than 200, or a connection that broke mid-response."""


class _Exchange:
    """httptools callbacks for one response: status, time of the first content, completion."""

    __slots__ = ("done", "keep_alive", "parser", "start", "status", "tail", "ttft")

    def __init__(self, start: float) -> None:
        self.start = start
        self.ttft: float | None = None
        self.status = 0
        self.done = False
        self.keep_alive = False
        self.tail = b""
        self.parser = httptools.HttpResponseParser(self)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if self.ttft is None:
            data = self.tail + body  # an event cut across two reads is still found
            if CONTENT.search(data):
                self.ttft = time.perf_counter() - self.start
            else:
                self.tail = data[-64:]

    def on_message_complete(self) -> None:
        self.done = True


class Client:
    """One keep-alive connection, reopened when the server closed it. ``send`` returns (TTFT, total) in seconds;
    TTFT is when the first non-empty content arrived (for a JSON reply: when its body did)."""

    def __init__(self) -> None:
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.key: tuple[str, int] | None = None

    async def send(self, request: Request) -> tuple[float, float]:
        if (
            self.writer is None
            or self.reader is None
            or self.reader.at_eof()
            or self.writer.is_closing()
            or self.key != (request.host, request.port)
        ):
            self.close()
            self.reader, self.writer = await asyncio.open_connection(request.host, request.port)
            self.key = (request.host, request.port)
        reader, writer = self.reader, self.writer
        start = time.perf_counter()
        ex = _Exchange(start)
        writer.write(request.raw)
        try:
            while not ex.done:
                data = await reader.read(65536)
                if not data:
                    raise HTTPFailure("the server closed the connection mid-response")
                ex.parser.feed_data(data)
        except (OSError, httptools.HttpParserError) as exc:
            self.close()
            raise HTTPFailure(f"{type(exc).__name__}: {exc}") from exc
        except HTTPFailure:
            self.close()
            raise
        total = time.perf_counter() - start
        if not ex.keep_alive:
            self.close()
        if ex.status != 200:
            raise HTTPFailure(f"HTTP {ex.status}")
        return (ex.ttft if ex.ttft is not None else total), total

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        self.reader = self.writer = None


# --- CPU accounting -------------------------------------------------------------------------------------------


def cpu_seconds(*pids: int) -> list[float]:
    """CPU time (user + system) of each of ``pids`` with all its descendants, from one scan of /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    found = []
    for pid in pids:
        family = {pid}
        grew = True
        while grew:
            kids = {p for p, parent in parents.items() if parent in family} - family
            grew = bool(kids)
            family |= kids
        found.append(sum(times.get(p, 0.0) for p in family))
    return found


def run_queue_wait(pid: int) -> float:
    """Seconds the threads of ``pid`` spent runnable but waiting for a CPU (``/proc/PID/task/*/schedstat``):
    time the process lost to other load on the machine, not to its own work."""
    total = 0.0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tasks:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields) - idle) / tick, sum(fields) / tick


# --- the multi-process runner ---------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """Merged samples of one target (ms), and CPU seconds per process group over its rounds."""

    ttft_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)
    completed: int = 0  # streams finished, recorded or not (for CPU per stream)
    errors: int = 0
    last_error: str = ""
    wall_s: float = 0.0
    # group -> CPU seconds (incl. "clients", "machine"); "wait_<group>": seconds it waited for a CPU
    cpu_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Plan:
    requests: dict[str, Request]  # target name -> the request its streams send
    schedule: list[str]  # target name per round
    streams: int  # in this process
    offsets: list[float]  # start offset of each of this process's streams, seconds
    ramp_s: float
    window_s: float


async def _round(plan: _Plan, request: Request) -> tuple[list[float], list[float], int, int, str]:
    loop = asyncio.get_running_loop()
    begin = loop.time()
    record_from = begin + plan.ramp_s
    deadline = record_from + plan.window_s
    ttfts: list[float] = []
    totals: list[float] = []
    counts = [0, 0]  # completed, errors
    last_error = [""]

    async def stream(offset: float) -> None:
        client = Client()
        await asyncio.sleep(offset)
        try:
            while (started := loop.time()) < deadline:
                try:
                    ttft, total = await client.send(request)
                except (HTTPFailure, OSError) as exc:
                    if started >= record_from:
                        counts[1] += 1
                        last_error[0] = str(exc)
                    await asyncio.sleep(0.05)
                    continue
                counts[0] += 1
                if started >= record_from:
                    ttfts.append(ttft * 1000)
                    totals.append(total * 1000)
        finally:
            client.close()

    await asyncio.gather(*(stream(o) for o in plan.offsets))
    return ttfts, totals, counts[0], counts[1], last_error[0]


def _client_main(plan: _Plan, barrier: Any, out: Any) -> None:
    import uvloop

    results = []
    for name in plan.schedule:
        barrier.wait()
        results.append((name, *uvloop.run(_round(plan, plan.requests[name]))))
        barrier.wait()
    out.put(results)


def run_load(
    requests: dict[str, Request],
    schedule: list[str],
    *,
    streams: int,
    processes: int,
    ramp_s: float,
    window_s: float,
    watch: dict[str, int],
) -> dict[str, LoadResult]:
    """Run ``schedule`` (one target name per round) with ``streams`` in flight spread over ``processes`` client
    processes; ``watch``: process group name -> pid whose CPU (with its children) is accounted per target."""
    processes = max(1, min(processes, streams))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    out = ctx.Queue()
    procs = []
    for p in range(processes):
        mine = list(range(p, streams, processes))  # global stream indices, interleaved across processes
        offsets = [ramp_s * g / streams for g in mine]
        plan = _Plan(requests, schedule, len(mine), offsets, ramp_s, window_s)
        proc = ctx.Process(target=_client_main, args=(plan, barrier, out), daemon=True)
        proc.start()
        procs.append(proc)
    results = {name: LoadResult() for name in dict.fromkeys(schedule)}
    timeout = ramp_s + window_s + 120
    try:
        for name in schedule:
            barrier.wait(timeout=timeout)
            before = _snapshot(watch, procs)
            barrier.wait(timeout=timeout)
            after = _snapshot(watch, procs)
            r = results[name]
            r.wall_s += after["wall"] - before["wall"]
            for group in after:
                if group != "wall":
                    r.cpu_s[group] = r.cpu_s.get(group, 0.0) + after[group] - before[group]
        for _ in procs:
            for name, ttfts, totals, completed, errors, last in out.get(timeout=timeout):
                r = results[name]
                r.ttft_ms += ttfts
                r.total_ms += totals
                r.completed += completed
                r.errors += errors
                r.last_error = last or r.last_error
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return results


def _snapshot(watch: dict[str, int], procs: list[Any]) -> dict[str, float]:
    groups = list(watch)
    found = cpu_seconds(*watch.values(), *(p.pid for p in procs))
    snap = dict(zip(groups, found[: len(groups)], strict=True))
    snap["clients"] = sum(found[len(groups) :])
    for group, pid in watch.items():
        snap[f"wait_{group}"] = run_queue_wait(pid)
    snap["machine"] = machine_busy()[0]
    snap["wall"] = time.perf_counter()
    return snap
