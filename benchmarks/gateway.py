"""Added latency of the Pointsman gateway over calling the fake provider directly, side by side with the
LiteLLM proxy in the same run.

Every server is a separate process on loopback: two fake providers (``fast``: no delays, for the sequential
overhead; ``paced``: TTFT and ITL like a real model, for the concurrent streams), ``pointsman serve`` (one
uvicorn worker, open access, an explicit endpoint so no scorer runs; a second row routes through the prior
scorer), and the LiteLLM proxy (one worker) from its own virtual environment (``--litellm-venv``; made with
``python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]'``; skipped with a
message when missing).

- Sequential: rounds of requests, targets interleaved in a shuffled order each round; the figure is the median
  over rounds of each round's median, for a non-streaming reply and for a stream's TTFT (time to the first
  content token). "added" is the target minus direct.
- Concurrent: 16 and 64 streams kept in flight; p50 and p99 of TTFT and of the whole stream, added over direct.

Run:  nice -n 10 .venv/bin/python benchmarks/gateway.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from pointsman.gateway.testing import free_port

CONTENT = re.compile(rb'"content":\s*"[^"]')
MESSAGES = [{"role": "user", "content": "Write one short sentence about the sea."}]
PACED = {"ttft_ms": 100, "itl_ms": 10, "tokens": 20}
LITELLM_KEY = "sk-pointsman-benchmark-0123456789abcdef"  # LiteLLM refuses to start without a master key
ERRORS: dict[str, int] = {}  # failed requests per target (reported, not counted in the figures)
LAST_ERROR: dict[str, str] = {}


@dataclass
class Target:
    """Where to send requests: the fast (no delays) and paced (TTFT/ITL) upstreams, as this target names them.
    Direct calls reach two servers, so each has its own URL; gateways reach both through one."""

    name: str
    fast_url: str  # chat completions URL for the fast upstream
    fast_model: str
    paced_url: str
    paced_model: str
    headers: dict[str, str]
    pid: int | None = None  # the gateway's process, for CPU per request


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and all its descendants, from /proc."""
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
    family = {pid}
    grew = True
    while grew:
        kids = {p for p, parent in parents.items() if parent in family} - family
        grew = bool(kids)
        family |= kids
    return sum(times.get(p, 0.0) for p in family)


def start(
    args: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(args, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def one_reply(client: httpx.AsyncClient, t: Target) -> float:
    start = time.perf_counter()
    resp = await client.post(
        t.fast_url, json={"model": t.fast_model, "messages": MESSAGES}, headers=t.headers
    )
    resp.raise_for_status()
    return time.perf_counter() - start


async def one_stream(client: httpx.AsyncClient, t: Target, paced: bool) -> tuple[float, float]:
    """(TTFT, whole stream) in seconds; TTFT is the first chunk carrying non-empty content."""
    url, model = (t.paced_url, t.paced_model) if paced else (t.fast_url, t.fast_model)
    body = {"model": model, "messages": MESSAGES, "stream": True}
    start = time.perf_counter()
    ttft = None
    async with client.stream("POST", url, json=body, headers=t.headers) as resp:
        resp.raise_for_status()
        async for raw in resp.aiter_bytes():
            if ttft is None and CONTENT.search(raw):
                ttft = time.perf_counter() - start
    total = time.perf_counter() - start
    assert ttft is not None, f"{t.name}: no content in the stream"
    return ttft, total


async def sequential(
    client: httpx.AsyncClient, targets: list[Target], rounds: int, per_round: int, stream: bool
) -> dict[str, float]:
    """Median over rounds of each round's median latency (ms), targets interleaved in random order."""
    per_target: dict[str, list[float]] = {t.name: [] for t in targets}
    rng = random.Random(0)
    for _ in range(rounds):
        order = targets[:]
        rng.shuffle(order)
        for t in order:
            samples = []
            for _ in range(per_round):
                try:
                    if stream:
                        samples.append((await one_stream(client, t, paced=False))[0])
                    else:
                        samples.append(await one_reply(client, t))
                except httpx.HTTPError as exc:
                    ERRORS[t.name] = ERRORS.get(t.name, 0) + 1
                    LAST_ERROR[t.name] = repr(exc)
            per_target[t.name].append(statistics.median(samples) * 1000)
    return {name: statistics.median(v) for name, v in per_target.items()}


async def concurrent(client: httpx.AsyncClient, t: Target, streams: int, requests: int) -> dict[str, float]:
    """Keep ``streams`` in flight until ``requests`` finished; p50/p99 of TTFT and total (ms)."""
    ttfts: list[float] = []
    totals: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            try:
                ttft, total = await one_stream(client, t, paced=True)
            except httpx.HTTPError as exc:
                ERRORS[t.name] = ERRORS.get(t.name, 0) + 1
                LAST_ERROR[t.name] = repr(exc)
                continue
            ttfts.append(ttft * 1000)
            totals.append(total * 1000)

    await asyncio.gather(*(worker() for _ in range(streams)))
    q = statistics.quantiles
    return {
        "ttft_p50": statistics.median(ttfts),
        "ttft_p99": q(ttfts, n=100)[98],
        "total_p50": statistics.median(totals),
        "total_p99": q(totals, n=100)[98],
    }


async def warm(client: httpx.AsyncClient, targets: list[Target]) -> None:
    for t in targets:
        for _ in range(20):
            await one_reply(client, t)
        await asyncio.gather(*(one_stream(client, t, paced=True) for _ in range(16)))


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print(
            "  "
            + "  ".join(
                c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )


async def measure(targets: list[Target], quick: bool) -> dict[str, object]:
    rounds, per_round = (8, 10) if quick else (30, 20)
    levels = {16: 160 if quick else 640, 64: 320 if quick else 1280}
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
    results: dict[str, object] = {"rounds": rounds, "per_round": per_round, "paced": PACED}
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
        await warm(client, targets)
        seq = await sequential(client, targets, rounds, per_round, stream=False)
        ttft = await sequential(client, targets, rounds, per_round, stream=True)
        results["sequential_reply_ms"] = seq
        results["sequential_ttft_ms"] = ttft
        conc: dict[int, dict[str, dict[str, float]]] = {}
        for streams, requests in levels.items():
            conc[streams] = {}
            order = targets[:]
            random.Random(streams).shuffle(order)
            for t in order:
                conc[streams][t.name] = await concurrent(client, t, streams, requests)
        results["concurrent_ms"] = conc
        cpu: dict[str, dict[str, float]] = {}
        n = 100 if quick else 400
        for t in targets:
            if t.pid is None:
                continue
            before = cpu_seconds(t.pid)
            for _ in range(n):
                await one_reply(client, t)
            middle = cpu_seconds(t.pid)
            await asyncio.gather(*(one_stream(client, t, paced=True) for _ in range(n)))
            cpu[t.name] = {
                "reply": (middle - before) / n * 1000,
                "stream": (cpu_seconds(t.pid) - middle) / n * 1000,
            }
        results["gateway_cpu_ms_per_request"] = cpu
    return results


def report(results: dict[str, object], names: list[str]) -> None:
    cpu = results.get("gateway_cpu_ms_per_request")
    if isinstance(cpu, dict) and cpu:
        table(
            "gateway process CPU per request (ms; insensitive to other load on the machine)",
            ["target", "reply", f"stream ({PACED['tokens']} tokens)"],
            [[n, f"{v['reply']:.3f}", f"{v['stream']:.3f}"] for n, v in cpu.items()],
        )
    seq = results["sequential_reply_ms"]
    ttft = results["sequential_ttft_ms"]
    assert isinstance(seq, dict) and isinstance(ttft, dict)
    rows = []
    for name in names:
        added_r = seq[name] - seq["direct"]
        added_t = ttft[name] - ttft["direct"]
        rows.append([name, f"{seq[name]:.3f}", f"{added_r:+.3f}", f"{ttft[name]:.3f}", f"{added_t:+.3f}"])
    table(
        f"sequential, median of {results['rounds']} round medians × {results['per_round']} requests (ms)",
        ["target", "reply", "added", "stream TTFT", "added"],
        rows,
    )
    added = {n: seq[n] - seq["direct"] for n in names}
    if "litellm" in added and "pointsman" in added and added["pointsman"] > 0:
        print(f"  LiteLLM's added reply latency / Pointsman's: {added['litellm'] / added['pointsman']:.1f}×")
        print(
            f"  LiteLLM's added TTFT / Pointsman's: {(ttft['litellm'] - ttft['direct']) / max(ttft['pointsman'] - ttft['direct'], 1e-9):.1f}×"
        )
    conc = results["concurrent_ms"]
    assert isinstance(conc, dict)
    for streams, by_target in conc.items():
        base = by_target["direct"]
        rows = []
        for name in names:
            r = by_target[name]
            rows.append(
                [name]
                + [f"{r[k]:.1f}" for k in ("ttft_p50", "ttft_p99", "total_p50", "total_p99")]
                + [f"{r[k] - base[k]:+.1f}" for k in ("ttft_p50", "ttft_p99", "total_p99")]
            )
        table(
            f"{streams} concurrent streams (paced fake: TTFT {PACED['ttft_ms']} ms, ITL {PACED['itl_ms']} ms, "
            f"{PACED['tokens']} tokens), ms",
            [
                "target",
                "TTFT p50",
                "TTFT p99",
                "total p50",
                "total p99",
                "+TTFT p50",
                "+TTFT p99",
                "+total p99",
            ],
            rows,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Fewer rounds and requests (a smoke run).")
    parser.add_argument("--litellm-venv", type=Path, default=Path("/tmp/litellm-venv"))
    parser.add_argument("--json", type=Path, help="Also write the numbers here.")
    parser.add_argument("--no-scorer-row", action="store_true", help="Skip the routed (prior scorer) row.")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pointsman-bench-"))
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    pointsman = [sys.executable, "-c", "from pointsman.cli import main; main()"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        fast_port, paced_port, gw_port, ll_port = free_port(), free_port(), free_port(), free_port()
        procs.append(start([*pointsman, "fake-provider", "--port", str(fast_port), "--tokens", "16"], env))
        paced_args = [
            "--ttft-ms",
            str(PACED["ttft_ms"]),
            "--itl-ms",
            str(PACED["itl_ms"]),
            "--tokens",
            str(PACED["tokens"]),
        ]
        procs.append(start([*pointsman, "fake-provider", "--port", str(paced_port), *paced_args], env))
        for port, proc in zip((fast_port, paced_port), procs, strict=True):
            wait_http(f"http://127.0.0.1:{port}/healthz", proc, 60, "fake provider")
        config = tmp / "pointsman.toml"
        config.write_text(
            "\n".join(
                [
                    "[gateway]",
                    "retries = 0",
                    "",
                    *(
                        f'[catalog.providers.{name}]\nbase_url = "http://127.0.0.1:{port}/v1"\n'
                        "ttft_prior_ms = 50\nitl_prior_ms = 5\n"
                        for name, port in (("fast", fast_port), ("paced", paced_port))
                    ),
                    "[catalog.models.fake-model]\ncontext_window = 32768\nquality_prior = 0.5\n",
                    *(
                        f'[catalog.endpoints."fake-model@{name}"]\nupstream_model = "fake-model"\n'
                        "input_usd_per_mtok = 0.1\noutput_usd_per_mtok = 0.2\nprice_as_of = 2026-01-01\n"
                        for name in ("fast", "paced")
                    ),
                ]
            )
        )
        gw = start(
            [*pointsman, "serve", "--port", str(gw_port), "--open-access", "--config", str(config)],
            env,
            tmp / "gw.log",
        )
        procs.append(gw)
        wait_http(f"http://127.0.0.1:{gw_port}/healthz", gw, 120, "pointsman serve")

        def url(port: int) -> str:
            return f"http://127.0.0.1:{port}/v1/chat/completions"

        targets = [
            Target("direct", url(fast_port), "fake-model", url(paced_port), "fake-model", {}),
            Target(
                "pointsman", url(gw_port), "fake-model@fast", url(gw_port), "fake-model@paced", {}, gw.pid
            ),
        ]
        if not args.no_scorer_row:
            targets.append(
                Target(
                    "pointsman+scorer",
                    url(gw_port),
                    "router@q:1|providers:fast",
                    url(gw_port),
                    "router@q:1|providers:paced",
                    {},
                )
            )
        litellm = args.litellm_venv / "bin" / "litellm"
        if litellm.exists():
            ll_config = tmp / "litellm.yaml"
            ll_config.write_text(
                "model_list:\n"
                + "".join(
                    f"  - model_name: {name}\n    litellm_params:\n      model: openai/fake-model\n"
                    f"      api_base: http://127.0.0.1:{port}/v1\n      api_key: none\n"
                    for name, port in (("fast", fast_port), ("paced", paced_port))
                )
                + "litellm_settings:\n  num_retries: 0\n  request_timeout: 60\n"
            )
            ll_env = {
                **env,
                "LITELLM_LOG": "ERROR",
                "LITELLM_TELEMETRY": "False",
                "NO_DOCS": "True",
                "LITELLM_MASTER_KEY": LITELLM_KEY,
            }
            ll = start(
                [str(litellm), "--config", str(ll_config), "--port", str(ll_port), "--num_workers", "1"],
                ll_env,
                tmp / "litellm.log",
            )
            procs.append(ll)
            try:
                wait_http(f"http://127.0.0.1:{ll_port}/health/liveliness", ll, 180, "litellm proxy")
                auth = {"authorization": f"Bearer {LITELLM_KEY}"}
                targets.append(Target("litellm", url(ll_port), "fast", url(ll_port), "paced", auth, ll.pid))
            except RuntimeError as exc:
                print(f"LiteLLM skipped: {exc} (log: {tmp / 'litellm.log'})")
        else:
            print(
                f"LiteLLM skipped: {litellm} not found; install it with "
                f"'python -m venv {args.litellm_venv} && {args.litellm_venv}/bin/pip install \"litellm[proxy]\"'"
            )

        results = asyncio.run(measure(targets, args.quick))
        names = [t.name for t in targets]
        report(results, names)
        for name, count in ERRORS.items():
            print(f"  {name}: {count} failed request(s), last: {LAST_ERROR[name]}")
        results["errors"] = dict(ERRORS)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    finally:
        for proc in reversed(procs):
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
