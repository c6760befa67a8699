"""What the neural default costs, side by side with the prior: ``pointsman route`` as a whole process, and the
gateway's startup and per-request scorer time (its ``pointsman_scorer_seconds`` histogram on /metrics).

The gateway runs as a real server on loopback over the shipped catalogue, once with ``[routing] scorer =
"neural"`` and once with ``"prior"``; each request is a ``POST /v1/route`` dry run with a distinct prompt (the
neural scorer memoises prompt states, so a repeated prompt would not be encoded again).

Usage:  python benchmarks/scorer_default.py [--cli-repeats 3] [--requests 40]
"""

from __future__ import annotations

import argparse
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


def cli(args: list[str], repeats: int) -> list[float]:
    env = {**os.environ, "XDG_CONFIG_HOME": tempfile.mkdtemp()}
    env.pop("POINTSMAN_CONFIG_FILE", None)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from pointsman.cli import main; main()",
                "route",
                PROMPT,
                "--json",
                *args,
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        out.append(time.perf_counter() - start)
    return out


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cli-repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()

    print(f"load average at start: {os.getloadavg()}")
    print("pointsman route, whole process (s): median [min, max]")
    for label, extra in (
        ("neural (default)", []),
        ("--scorer prior", ["--scorer", "prior"]),
        ("-r claude-2@anthropic", ["-r", "claude-2@anthropic"]),
    ):
        runs = cli(extra, args.cli_repeats)
        print(f"  {label:24s} {statistics.median(runs):6.2f} [{min(runs):.2f}, {max(runs):.2f}]")

    for long in (False, True):
        size = "~370-token" if long else "~25-token"
        print(f"gateway, {args.requests} POST /v1/route dry runs with distinct {size} prompts")
        rows = {name: gateway(name, args.requests, long=long) for name in ("neural", "prior")}
        keys = ("hist_mean_ms", "scorer_p50_ms", "scorer_p90_ms", "request_p50_ms")
        # Startup is meaningful once: the second gateway in this process finds torch and MiniLM loaded.
        for key in keys if long else ("startup_s", *keys):
            n, p = rows["neural"][key], rows["prior"][key]
            print(
                f"  {key:16s} neural {n:9.2f}   prior {p:9.2f}   ratio {n / p if p else float('inf'):7.1f}x"
            )
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
