"""What the neural default costs, side by side with the prior: ``pointsman route`` as a whole process, and the
gateway's startup and per-request scorer time (its ``pointsman_scorer_seconds`` histogram on /metrics).

The neural rows run twice: with the native MiniLM (the default, ``pointsman.scorer.bert``) and with
``POINTSMAN_ENCODER_BACKEND=transformers`` (transformers' BertModel, what the default used before), so the
two are measured in one invocation under the same load. Runs of the CLI rows are interleaved round-robin.

The gateway runs as a real server on loopback over the shipped catalogue, in a fresh child process per row
(so each startup pays its own imports), with ``[routing] scorer = "neural"`` or ``"prior"``; each request is a
``POST /v1/route`` dry run with a distinct prompt (the neural scorer memoises prompt states, so a repeated
prompt would not be encoded again).

Usage:  python benchmarks/scorer_default.py [--cli-repeats 5] [--requests 40] [--no-gateway]
        python benchmarks/scorer_default.py --threads 1,2 [--rounds 3]   (POINTSMAN_SCORER_TORCH_THREADS)
        python benchmarks/scorer_default.py --members 1,5 [--rounds 3]   (the default's read-outs: 1 vs all 5)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "What is the largest of 3, 9 and 4?"
TOPICS = ["binary search", "photosynthesis", "the French revolution", "TCP slow start", "a sonnet about rain"]
TASKS = ["Explain {} to a ten-year-old.", "Write Python code related to {}.", "List three facts about {}."]


def prompts(n: int, *, long: bool = False) -> list[str]:
    """``n`` distinct prompts: ~25 MiniLM tokens each, or with ``long`` ~370 (past the scorer's 256-token window)."""
    out = []
    for i in range(n):
        task = TASKS[i % len(TASKS)].format(TOPICS[(i // len(TASKS)) % len(TOPICS)])
        text = f"{task} (request {i}: keep it under {50 + 7 * i} words, and say why.)"
        if long:
            text = (
                " ".join(f"Context line {j} for request {i}: {TOPICS[j % len(TOPICS)]}." for j in range(30))
                + text
            )
        out.append(text)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


BACKEND_ENV = "POINTSMAN_ENCODER_BACKEND"


THREADS_ENV = "POINTSMAN_SCORER_TORCH_THREADS"


def child_env(backend: str | None, threads: int | None = None) -> dict[str, str]:
    env = {**os.environ, "XDG_CONFIG_HOME": tempfile.mkdtemp()}
    env.pop("POINTSMAN_CONFIG_FILE", None)
    env.pop(BACKEND_ENV, None)
    if backend is not None:
        env[BACKEND_ENV] = backend
    if threads is not None:
        env[THREADS_ENV] = str(threads)
    return env


def cli_once(args: list[str], backend: str | None) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from pointsman.cli import main; main()", "route", PROMPT, "--json", *args],
        check=True,
        capture_output=True,
        env=child_env(backend),
    )
    return time.perf_counter() - start


def gateway(scorer: str, n: int, *, long: bool = False) -> dict[str, float]:
    import httpx

    from pointsman.gateway.app import create_app
    from pointsman.gateway.billing import OpenAccessBilling
    from pointsman.gateway.testing import running_gateway
    from pointsman.settings import Settings

    tmp = Path(tempfile.mkdtemp())
    config = tmp / "config.toml"
    config.write_text(f'[routing]\nscorer = "{scorer}"\n', encoding="utf-8")
    settings = Settings(data_dir=tmp / "data", config_file=config)
    app = create_app(settings, billing=OpenAccessBilling())
    start = time.perf_counter()
    with running_gateway(app) as v1:
        startup = time.perf_counter() - start
        client_s, scorer_ms = [], []
        with httpx.Client(base_url=v1, timeout=120, trust_env=False) as http:
            for text in prompts(n, long=long):
                t0 = time.perf_counter()
                r = http.post(
                    "/route", json={"model": "router", "messages": [{"role": "user", "content": text}]}
                )
                client_s.append(time.perf_counter() - t0)
                r.raise_for_status()
                scorer_ms.append(r.json()["scorer_ms"])
            metrics = http.get(v1.removesuffix("/v1") + "/metrics").text
    total = float(re.search(r"^pointsman_scorer_seconds_sum (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    count = float(re.search(r"^pointsman_scorer_seconds_count (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
    return {
        "startup_s": startup,
        "hist_mean_ms": 1000 * total / count,
        "hist_count": count,
        "scorer_p50_ms": statistics.median(scorer_ms),
        "scorer_p90_ms": pct(scorer_ms, 0.9),
        "request_p50_ms": 1000 * statistics.median(client_s),
    }


def gateway_child(
    scorer: str, backend: str | None, n: int, long: bool, threads: int | None = None
) -> dict[str, float]:
    """``gateway()`` in a fresh interpreter, so its startup pays the imports a real ``pointsman serve`` pays."""
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child-gateway",
            scorer,
            "--requests",
            str(n),
            *(["--long"] if long else []),
        ],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(backend, threads),
    )
    row: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return row


CLI_ROWS: tuple[tuple[str, list[str], str | None], ...] = (
    ("neural, native MiniLM", [], None),
    ("neural, transformers", [], "transformers"),
    ("--scorer prior", ["--scorer", "prior"], None),
    ("-r claude-2@anthropic", ["-r", "claude-2@anthropic"], None),
)
GATEWAY_ROWS = (
    ("native", "neural", None),
    ("transformers", "neural", "transformers"),
    ("prior", "prior", None),
)


def compare_gateways(rows: list[tuple[str, str, int | None]], n: int, rounds: int) -> None:
    """Per-request scorer time of neural gateways (label, scorer name or checkpoint directory, torch threads), a
    fresh gateway per row and round, the rows interleaved; medians over rounds of each gateway's p50/p90."""
    print(f"load average at start: {os.getloadavg()}")
    keys = ("scorer_p50_ms", "scorer_p90_ms", "request_p50_ms", "startup_s")
    for long in (False, True):
        size = "~370-token" if long else "~25-token"
        runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in rows}
        for _ in range(rounds):
            for label, scorer, threads in rows:
                runs[label].append(gateway_child(scorer, None, n, long, threads=threads))
        print(
            f"gateway, {n} POST /v1/route dry runs, distinct {size} prompts; median of {rounds} fresh gateways"
        )
        print(f"  {'':16s} " + " ".join(f"{label:>14s}" for label, _, _ in rows))
        for key in keys:
            cells = [statistics.median(r[key] for r in runs[label]) for label, _, _ in rows]
            print(f"  {key:16s} " + " ".join(f"{v:14.2f}" for v in cells))
    print(f"load average at end: {os.getloadavg()}")


def member_checkpoints(counts: list[int]) -> list[tuple[str, str, int | None]]:
    """Gateway rows for the shipped default cut to its first k read-outs, for each k (written to a temp dir;
    k = 1 is member 0 alone, the single read-out), on one torch thread like ``pointsman serve``."""
    from pointsman.scorer.checkpoint import load_model, save_model
    from pointsman.scorer.ensemble import ScorerEnsemble, members_of
    from pointsman.scorer.neural import packaged_checkpoint

    model, meta = load_model(packaged_checkpoint("default"))
    members = members_of(model)
    rows: list[tuple[str, str, int | None]] = []
    for k in counts:
        if not 1 <= k <= len(members):
            raise SystemExit(f"--members: the shipped default has {len(members)} read-outs, got {k}")
        directory = Path(tempfile.mkdtemp()) / f"members-{k}"
        save_model(members[0] if k == 1 else ScorerEnsemble(members[:k]), directory, meta=meta, half=True)
        rows.append((f"{k} read-out(s)", str(directory), 1))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli-repeats", type=int, default=5)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--no-gateway", action="store_true")
    parser.add_argument("--child-gateway", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--long", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--threads",
        default=None,
        help="Instead of the usual rows: the native neural gateway with each of these "
        f"{THREADS_ENV} values (comma-separated, e.g. 1,2), runs interleaved over --rounds.",
    )
    parser.add_argument(
        "--members",
        default=None,
        help="Instead of the usual rows: gateways on the shipped default cut to its first k read-outs, for each "
        "k (comma-separated, e.g. 1,5), one torch thread, runs interleaved over --rounds.",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="With --threads or --members: fresh gateways per value."
    )
    args = parser.parse_args()
    if args.threads:
        rows = [(f"{t} thread(s)", "neural", int(t)) for t in args.threads.split(",")]
        compare_gateways(rows, args.requests, args.rounds)
        return
    if args.members:
        compare_gateways(
            member_checkpoints([int(k) for k in args.members.split(",")]), args.requests, args.rounds
        )
        return
    if args.child_gateway:
        print(json.dumps(gateway(args.child_gateway, args.requests, long=args.long)))
        return

    print(f"load average at start: {os.getloadavg()}")
    print(f"pointsman route, whole process (s), {args.cli_repeats} runs each, interleaved: median [min, max]")
    runs: dict[str, list[float]] = {label: [] for label, _, _ in CLI_ROWS}
    for _ in range(args.cli_repeats):
        for label, extra, backend in CLI_ROWS:
            runs[label].append(cli_once(extra, backend))
    for label, values in runs.items():
        print(f"  {label:24s} {statistics.median(values):6.2f} [{min(values):.2f}, {max(values):.2f}]")

    if args.no_gateway:
        print(f"load average at end: {os.getloadavg()}")
        return
    keys = ("startup_s", "hist_mean_ms", "scorer_p50_ms", "scorer_p90_ms", "request_p50_ms")
    for long in (False, True):
        size = "~370-token" if long else "~25-token"
        print(
            f"gateway, {args.requests} POST /v1/route dry runs with distinct {size} prompts (fresh process each)"
        )
        rows = {
            label: gateway_child(scorer, backend, args.requests, long)
            for label, scorer, backend in GATEWAY_ROWS
        }
        print(f"  {'':16s} " + " ".join(f"{label:>12s}" for label in rows) + "   transformers/native")
        for key in keys:
            values = [rows[label][key] for label in rows]
            ratio = rows["transformers"][key] / rows["native"][key] if rows["native"][key] else float("inf")
            print(f"  {key:16s} " + " ".join(f"{v:12.2f}" for v in values) + f"   {ratio:8.2f}x")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
