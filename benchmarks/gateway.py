"""Added latency of the Pointsman gateway over calling the fake provider directly, side by side with the
LiteLLM proxy in the same run.

Every server is a separate process on loopback: two fake providers (``fast``: no delays, for the sequential
overhead; ``paced``: TTFT and ITL like a real model, for the concurrent streams), ``pointsman serve`` (one
uvicorn worker, open access, an explicit endpoint so no scorer runs; a second row, ``pointsman+prior``, routes
through the prior scorer), and the LiteLLM proxy (one worker) from its own virtual environment
(``--litellm-venv``, made with ``python -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install
'litellm[proxy]'``; skipped with a message when missing).

- Sequential: rounds of requests, targets interleaved in a shuffled order each round; the figure is the median
  over rounds of each round's median, for a non-streaming reply and for a stream's TTFT (time to the first
  content token). "added" is the target minus direct. The gateways' CPU per reply is read over these rounds.
- Concurrent (16 and 64 streams by default): several client processes (``benchmarks/_loadgen.py``) keep the
  streams in flight against one target per round, rounds alternating targets; p50/p99 of TTFT and of the
  whole stream, "added" = the target's percentile minus direct's, both from the same run. The CPU each process
  group used per target (gateway, fake provider, clients, the whole machine) is printed beside them, with a
  warning when the direct baseline itself is late: then the machine, not the gateway, set the figures.

The paced fake's TTFT/ITL/answer length set the offered load (printed); the defaults keep 64 streams within
what a 2-core machine can serve with the gateway, the fake provider and the clients all on it.

Run:  .venv/bin/python benchmarks/gateway.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import Client, HTTPFailure, LoadResult, Request, cpu_seconds, run_load

from pointsman.gateway.testing import free_port

MESSAGES = [{"role": "user", "content": "Write one short sentence about the sea."}]
LITELLM_KEY = "sk-pointsman-benchmark-0123456789abcdef"  # LiteLLM refuses to start without a master key
ERRORS: dict[str, int] = {}  # failed requests per target (reported, not counted in the figures)
LAST_ERROR: dict[str, str] = {}


@dataclass(frozen=True)
class Pacing:
    ttft_ms: float
    itl_ms: float
    tokens: int

    @property
    def stream_s(self) -> float:
        """How long one stream takes upstream, at the least."""
        return (self.ttft_ms + self.itl_ms * (self.tokens - 1)) / 1000


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
    group: str | None = None  # the gateway process serving it (a key of the watched pids), for its CPU

    def request(self, *, paced: bool, stream: bool) -> Request:
        url, model = (self.paced_url, self.paced_model) if paced else (self.fast_url, self.fast_model)
        body: dict[str, object] = {"model": model, "messages": MESSAGES}
        if stream:
            body["stream"] = True
        return Request.build(url, json.dumps(body).encode(), self.headers)


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


def _error(name: str, exc: Exception) -> None:
    ERRORS[name] = ERRORS.get(name, 0) + 1
    LAST_ERROR[name] = str(exc)


async def sequential(
    targets: list[Target], watch: dict[str, int], rounds: int, per_round: int, stream: bool
) -> tuple[dict[str, float], dict[str, float]]:
    """Median over rounds of each round's median latency (ms; a stream's TTFT), targets interleaved in random
    order; and each gateway's CPU time per request (ms) over those rounds."""
    clients = {t.name: Client() for t in targets}
    requests = {t.name: t.request(paced=False, stream=stream) for t in targets}
    per_target: dict[str, list[float]] = {t.name: [] for t in targets}
    cpu = dict.fromkeys(per_target, 0.0)
    done = dict.fromkeys(per_target, 0)
    rng = random.Random(0)
    for _ in range(rounds):
        order = targets[:]
        rng.shuffle(order)
        for t in order:
            pid = watch.get(t.group or "")
            before = cpu_seconds(pid)[0] if pid else 0.0
            samples = []
            for _ in range(per_round):
                try:
                    ttft, total = await clients[t.name].send(requests[t.name])
                except (HTTPFailure, OSError) as exc:
                    _error(t.name, exc)
                    continue
                samples.append(ttft if stream else total)
            if pid:
                cpu[t.name] += cpu_seconds(pid)[0] - before
            done[t.name] += len(samples)
            if samples:
                per_target[t.name].append(statistics.median(samples) * 1000)
    for c in clients.values():
        c.close()
    medians = {name: statistics.median(v) for name, v in per_target.items()}
    cpu_ms = {t.name: cpu[t.name] / max(done[t.name], 1) * 1000 for t in targets if t.group}
    return medians, cpu_ms


async def warm(targets: list[Target]) -> None:
    """Connections open, code paths and caches warm, in every server."""
    for t in targets:
        client = Client()
        for paced, stream, n in ((False, False, 30), (False, True, 30), (True, True, 2)):
            request = t.request(paced=paced, stream=stream)
            for _ in range(n):
                await client.send(request)
        client.close()


def concurrent(
    targets: list[Target],
    watch: dict[str, int],
    pacing: Pacing,
    streams: int,
    *,
    processes: int,
    rounds: int,
    window_s: float,
) -> dict[str, dict[str, float]]:
    """``streams`` in flight, one target per round, rounds alternating targets: percentiles (ms) and CPU."""
    rng = random.Random(streams)
    schedule: list[str] = []
    for _ in range(rounds):
        order = [t.name for t in targets]
        rng.shuffle(order)
        schedule += order
    requests = {t.name: t.request(paced=True, stream=True) for t in targets}
    loads = run_load(
        requests,
        schedule,
        streams=streams,
        processes=processes,
        ramp_s=pacing.stream_s,
        window_s=window_s,
        watch=watch,
    )
    return {t.name: _summary(t, loads[t.name]) for t in targets}


def _summary(t: Target, r: LoadResult) -> dict[str, float]:
    if r.errors:
        ERRORS[t.name] = ERRORS.get(t.name, 0) + r.errors
        LAST_ERROR[t.name] = r.last_error
    assert len(r.ttft_ms) >= 100, f"{t.name}: only {len(r.ttft_ms)} streams recorded ({r.last_error})"

    def pct(values: list[float], q: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[q - 1]

    wall = max(r.wall_s, 1e-9)
    out = {
        "n": float(len(r.ttft_ms)),
        "ttft_p50": statistics.median(r.ttft_ms),
        "ttft_p99": pct(r.ttft_ms, 99),
        "total_p50": statistics.median(r.total_ms),
        "total_p99": pct(r.total_ms, 99),
        "streams_per_s": r.completed / wall,
    }
    for group, seconds in r.cpu_s.items():
        out[f"cores_{group}"] = seconds / wall  # CPU seconds per second: cores kept busy (or waited)
    if t.group:
        out["cpu_ms_per_stream"] = r.cpu_s.get(t.group, 0.0) / max(r.completed, 1) * 1000
    return out


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


def sections(
    results: dict[str, object],
) -> tuple[dict[str, float], dict[str, float], dict[str, float], dict[int, dict[str, Any]]]:
    """The four parts of ``measure``'s results: sequential reply ms, sequential TTFT ms, gateway CPU ms per
    reply (each by target), and the concurrent figures by stream count, then target."""
    seq = results["sequential_reply_ms"]
    ttft = results["sequential_ttft_ms"]
    cpu = results["gateway_cpu_ms_per_reply"]
    conc = results["concurrent"]
    assert (
        isinstance(seq, dict) and isinstance(ttft, dict) and isinstance(cpu, dict) and isinstance(conc, dict)
    )
    return seq, ttft, cpu, conc


def report(results: dict[str, object], targets: dict[str, Target], pacing: Pacing) -> None:
    seq, ttft, _, conc = sections(results)
    names = list(targets)
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
    ncpu = os.cpu_count() or 1
    for streams, by_target in conc.items():
        base = by_target["direct"]
        print(
            f"\n{streams} concurrent streams, {results['processes']} client processes, {results['conc_rounds']} "
            f"rounds × {results['window_s']:g} s per target. Offered: each stream {pacing.tokens} tokens "
            f"(paced fake: TTFT {pacing.ttft_ms:g} ms, ITL {pacing.itl_ms:g} ms, {pacing.stream_s * 1000:.0f} ms "
            f"a stream) = {streams / pacing.stream_s:.0f} streams/s, "
            f"{streams * pacing.tokens / pacing.stream_s:.0f} chunks/s"
        )
        rows = []
        for name in names:
            r = by_target[name]
            rows.append(
                [name, f"{r['n']:.0f}", f"{r['streams_per_s']:.0f}"]
                + [f"{r[k]:.1f}" for k in ("ttft_p50", "ttft_p99", "total_p50", "total_p99")]
                + [f"{r[k] - base[k]:+.1f}" for k in ("ttft_p50", "ttft_p99", "total_p99")]
                + [f"{r['ttft_p99'] / base['ttft_p99']:.2f}×"]
            )
        table(
            "  latency (ms; added = target − direct in the same run)",
            [
                "target",
                "streams",
                "/s",
                "TTFT p50",
                "TTFT p99",
                "total p50",
                "total p99",
                "+TTFT p50",
                "+TTFT p99",
                "+total p99",
                "TTFT p99/direct",
            ],
            rows,
        )
        groups = [g for g in ("pointsman", "baseline", "litellm", "fake", "clients") if f"cores_{g}" in base]
        rows = []
        for name in names:
            r = by_target[name]
            target = targets[name].group
            per_stream = f"{r['cpu_ms_per_stream']:.2f}" if "cpu_ms_per_stream" in r else "-"
            waited = r.get(f"cores_wait_{target or 'fake'}", 0.0)
            rows.append(
                [name]
                + [f"{r[f'cores_{g}']:.2f}" for g in groups]
                + [f"{r['cores_machine']:.2f} of {ncpu}", per_stream, f"{waited * 1000:.0f}"]
            )
        table(
            "  CPU while each target's rounds ran (cores busy = CPU seconds per second; waited = ms per second the "
            "target's server (the fake for direct) was runnable but had no CPU)",
            ["target", *groups, "whole machine", "gateway CPU ms/stream", "waited ms/s"],
            rows,
        )
        late = base["ttft_p99"] - pacing.ttft_ms
        if late > max(20.0, 0.5 * pacing.ttft_ms):
            print(
                f"  WARNING: the direct baseline's TTFT p99 is {late:.0f} ms over the fake's configured "
                f"{pacing.ttft_ms:g} ms: the clients or the fake provider were starved, so these figures are the "
                "machine's queueing more than the gateway's (offer less load: --ttft-ms/--itl-ms/--streams)"
            )
        busiest = max(by_target[n]["cores_machine"] for n in names)
        if busiest > 0.9 * ncpu:
            print(f"  WARNING: the machine was {busiest / ncpu:.0%} busy during some rounds (saturated)")
        for name in names:
            group = targets[name].group
            waited = by_target[name].get(f"cores_wait_{group}", 0.0) if group else 0.0
            if waited > 0.05:
                print(
                    f"  WARNING: {name}'s server waited for a CPU {waited * 1000:.0f} ms per second: other load "
                    "on the machine delayed it, so its added p99 is partly the machine's"
                )
    summary(results, names, pacing)


def summary(results: dict[str, object], names: list[str], pacing: Pacing) -> None:
    """The figures as one Markdown table (for the README), gateways side by side."""
    seq, ttft, cpu, conc = sections(results)
    cols = [n for n in names if n != "direct"]
    ref = "pointsman"

    def added(values: dict[str, float], name: str, fmt: str = "+.2f") -> str:
        text = f"{values[name] - values['direct']:{fmt}} ms"
        mine = values[ref] - values["direct"]
        if name == "litellm" and mine > 0:
            text += f" ({(values[name] - values['direct']) / mine:.1f}×)"
        return text

    rows = [
        [
            f"added latency per reply, p50 (median of {results['rounds']} interleaved round medians; "
            f"direct {seq['direct']:.2f} ms)",
            *(added(seq, n) for n in cols),
        ],
        [f"added TTFT per stream, p50 (direct {ttft['direct']:.2f} ms)", *(added(ttft, n) for n in cols)],
    ]
    for streams, by_target in conc.items():
        base = by_target["direct"]
        rows.append(
            [
                f"{streams} concurrent streams: added TTFT p50 / p99 (direct {base['ttft_p50']:.0f} / "
                f"{base['ttft_p99']:.0f} ms)",
                *(
                    f"{by_target[n]['ttft_p50'] - base['ttft_p50']:+.1f} / "
                    f"{by_target[n]['ttft_p99'] - base['ttft_p99']:+.1f} ms"
                    for n in cols
                ),
            ]
        )
        rows.append(
            [
                f"{streams} concurrent streams: added whole-stream p99 (direct {base['total_p99']:.0f} ms)",
                *(f"{by_target[n]['total_p99'] - base['total_p99']:+.1f} ms" for n in cols),
            ]
        )
    top = max(conc) if conc else None
    rows.append(
        [
            f"gateway CPU per reply / per {pacing.tokens}-token stream"
            + (f" (at {top} streams)" if top else ""),
            *(
                f"{cpu[n]:.2f} / {conc[top][n]['cpu_ms_per_stream']:.2f} ms"
                if n in cpu and top and "cpu_ms_per_stream" in conc[top][n]
                else "-"
                for n in cols
            ),
        ]
    )
    print("\nSummary (Markdown)\n")
    print("| | " + " | ".join(cols) + " |")
    print("| --- |" + " --- |" * len(cols))
    for r in rows:
        print("| " + " | ".join(r) + " |")


async def _sequential_all(
    targets: list[Target], watch: dict[str, int], rounds: int, per_round: int
) -> dict[str, object]:
    await warm(targets)
    seq, cpu = await sequential(targets, watch, rounds, per_round, stream=False)
    ttft, _ = await sequential(targets, watch, rounds, per_round, stream=True)
    return {"sequential_reply_ms": seq, "sequential_ttft_ms": ttft, "gateway_cpu_ms_per_reply": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="Fewer rounds and requests (a smoke run).")
    parser.add_argument("--litellm-venv", type=Path, default=Path("/tmp/litellm-venv"))
    parser.add_argument("--json", type=Path, help="Also write the numbers here.")
    parser.add_argument("--no-scorer-row", action="store_true", help="Skip the routed (prior scorer) row.")
    parser.add_argument(
        "--baseline",
        type=Path,
        help="A directory holding another version's pointsman package (e.g. 'git archive HEAD~3 pointsman | tar "
        "-x -C /tmp/base'): its gateway runs too, as the row 'baseline', in the same interleaved rounds, so a "
        "change is compared under the same load.",
    )
    parser.add_argument(
        "--streams", default="16,64", help="Concurrency levels, comma-separated (default: 16,64)."
    )
    parser.add_argument("--processes", type=int, default=4, help="Client processes for the concurrent part.")
    parser.add_argument("--ttft-ms", type=float, default=100.0, help="Paced fake: time to first token.")
    parser.add_argument("--itl-ms", type=float, default=25.0, help="Paced fake: time between tokens.")
    parser.add_argument("--tokens", type=int, default=20, help="Paced fake: tokens per answer.")
    parser.add_argument("--window-s", type=float, default=4.0, help="Measured seconds per concurrent round.")
    args = parser.parse_args()
    pacing = Pacing(args.ttft_ms, args.itl_ms, args.tokens)
    levels = [int(x) for x in args.streams.split(",") if x.strip()]
    rounds, per_round = (8, 10) if args.quick else (30, 20)
    conc_rounds = 2 if args.quick else 5

    tmp = Path(tempfile.mkdtemp(prefix="pointsman-bench-"))
    env = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    pointsman = [sys.executable, "-c", "from pointsman.cli import main; main()"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        fast_port, paced_port, gw_port, ll_port = free_port(), free_port(), free_port(), free_port()
        procs.append(start([*pointsman, "fake-provider", "--port", str(fast_port), "--tokens", "16"], env))
        paced_args = [
            "--ttft-ms",
            str(pacing.ttft_ms),
            "--itl-ms",
            str(pacing.itl_ms),
            "--tokens",
            str(pacing.tokens),
        ]
        paced = start([*pointsman, "fake-provider", "--port", str(paced_port), *paced_args], env)
        procs.append(paced)
        watch = {"fake": paced.pid}
        for port, proc in zip((fast_port, paced_port), procs, strict=True):
            wait_http(f"http://127.0.0.1:{port}/healthz", proc, 60, "fake provider")
        config = tmp / "pointsman.toml"
        config.write_text(
            "\n".join(
                [
                    "[gateway]",
                    "retries = 0",
                    "",
                    "[routing]",
                    'scorer = "prior"  # the routed row measures the routing path, not a neural model on 2 cores',
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
        watch["pointsman"] = gw.pid
        base_port = free_port()
        if args.baseline is not None:
            if not (args.baseline / "pointsman" / "__init__.py").exists():
                raise SystemExit(f"--baseline {args.baseline}: no pointsman package there")
            base = start(
                [*pointsman, "serve", "--port", str(base_port), "--open-access", "--config", str(config)],
                {**env, "PYTHONPATH": str(args.baseline.resolve())},
                tmp / "baseline.log",
            )
            procs.append(base)
            wait_http(f"http://127.0.0.1:{base_port}/healthz", base, 120, "baseline pointsman serve")
            watch["baseline"] = base.pid

        def url(port: int) -> str:
            return f"http://127.0.0.1:{port}/v1/chat/completions"

        targets = [
            Target("direct", url(fast_port), "fake-model", url(paced_port), "fake-model", {}),
            Target(
                "pointsman",
                url(gw_port),
                "fake-model@fast",
                url(gw_port),
                "fake-model@paced",
                {},
                "pointsman",
            ),
        ]
        if args.baseline is not None:
            targets.append(
                Target(
                    "baseline",
                    url(base_port),
                    "fake-model@fast",
                    url(base_port),
                    "fake-model@paced",
                    {},
                    "baseline",
                )
            )
        if not args.no_scorer_row:
            targets.append(
                Target(
                    "pointsman+prior",
                    url(gw_port),
                    "router@q:1|providers:fast",
                    url(gw_port),
                    "router@q:1|providers:paced",
                    {},
                    "pointsman",
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
                targets.append(
                    Target("litellm", url(ll_port), "fast", url(ll_port), "paced", auth, "litellm")
                )
                watch["litellm"] = ll.pid
            except RuntimeError as exc:
                print(f"LiteLLM skipped: {exc} (log: {tmp / 'litellm.log'})")
        else:
            print(
                f"LiteLLM skipped: {litellm} not found; install it with "
                f"'python -m venv {args.litellm_venv} && {args.litellm_venv}/bin/pip install \"litellm[proxy]\"'"
            )

        started = time.monotonic()
        results: dict[str, object] = {
            "rounds": rounds,
            "per_round": per_round,
            "pacing": pacing.__dict__,
            "processes": args.processes,
            "conc_rounds": conc_rounds,
            "window_s": args.window_s,
        }
        results.update(asyncio.run(_sequential_all(targets, watch, rounds, per_round)))
        results["concurrent"] = {
            streams: concurrent(
                targets,
                watch,
                pacing,
                streams,
                processes=args.processes,
                rounds=conc_rounds,
                window_s=args.window_s,
            )
            for streams in levels
        }
        report(results, {t.name: t for t in targets}, pacing)
        print(f"\n({time.monotonic() - started:.0f} s of measuring)")
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
