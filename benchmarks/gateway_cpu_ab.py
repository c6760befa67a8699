"""Gateway CPU per stream, this tree against another version's (``--baseline DIR`` holding its ``pointsman``
package), in alternating blocks of concurrent streams against one paced fake provider.

CPU time (from /proc) is what each gateway process used while its block ran, divided by the streams it served;
alternating the blocks spreads the machine's changing load over both, and the median over blocks is reported
with every block's figure, so a reader can see the spread. Also the median TTFT each target added over calling
the fake directly.

Run:  .venv/bin/python benchmarks/gateway_cpu_ab.py --baseline /tmp/base [--blocks 20 --streams 16 --block-s 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _loadgen import Client, Request, cpu_seconds
from gateway import wait_http

from pointsman.gateway.testing import free_port

POINTSMAN = [sys.executable, "-c", "from pointsman.cli import main; main()"]


def config(fake_port: int) -> str:
    return f"""[gateway]
retries = 0
[catalog.providers.fast]
base_url = "http://127.0.0.1:{fake_port}/v1"
ttft_prior_ms = 50
itl_prior_ms = 5
[catalog.models.fake-model]
context_window = 32768
quality_prior = 0.5
[catalog.endpoints."fake-model@fast"]
upstream_model = "fake-model"
input_usd_per_mtok = 0.1
output_usd_per_mtok = 0.2
price_as_of = 2026-01-01
"""


def request(port: int, model: str) -> Request:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    return Request.build(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode())


async def block(req: Request, streams: int, seconds: float) -> list[float]:
    """``streams`` clients sending back to back for ``seconds``: each stream's TTFT."""
    ttfts: list[float] = []
    end = time.perf_counter() + seconds

    async def one() -> None:
        client = Client()
        while time.perf_counter() < end:
            ttft, _ = await client.send(req)
            ttfts.append(ttft)
        client.close()

    await asyncio.gather(*(one() for _ in range(streams)))
    return ttfts


async def measure(
    reqs: dict[str, Request], pids: dict[str, int], blocks: int, streams: int, seconds: float
) -> None:
    for req in reqs.values():
        await block(req, streams, 1.0)  # warm
    cpu: dict[str, list[float]] = {n: [] for n in reqs}
    ttft: dict[str, list[float]] = {n: [] for n in reqs}
    for b in range(blocks):
        gateways = [n for n in reqs if n != "direct"]
        for name in ["direct", *(gateways if b % 2 == 0 else gateways[::-1])]:
            pid = pids.get(name)
            before = cpu_seconds(pid)[0] if pid else 0.0
            samples = await block(reqs[name], streams, seconds)
            used = cpu_seconds(pid)[0] - before if pid else 0.0
            cpu[name].append(used / len(samples) * 1000)
            ttft[name].append(statistics.median(samples) * 1000)
    direct = statistics.median(ttft["direct"])
    print(f"{blocks} blocks x {seconds:g} s per target, {streams} concurrent streams; load {os.getloadavg()}")
    for name in pids:
        print(
            f"  {name:9s} CPU ms/stream median {statistics.median(cpu[name]):.3f}   added TTFT p50 "
            f"{statistics.median(ttft[name]) - direct:+.3f} ms   blocks {[round(x, 2) for x in cpu[name]]}"
        )
    ratio = statistics.median(cpu["pointsman"]) / statistics.median(cpu["baseline"])
    print(f"  CPU per stream, pointsman / baseline: {ratio:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, required=True, help="Directory holding the other pointsman.")
    parser.add_argument("--blocks", type=int, default=20)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--block-s", type=float, default=3.0)
    args = parser.parse_args()
    if not (args.baseline / "pointsman" / "__init__.py").exists():
        raise SystemExit(f"--baseline {args.baseline}: no pointsman package there")
    tmp = Path(tempfile.mkdtemp(prefix="pointsman-ab-"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    fake_port = free_port()
    fake_args = [
        "fake-provider",
        "--port",
        str(fake_port),
        "--ttft-ms",
        "20",
        "--itl-ms",
        "5",
        "--tokens",
        "20",
    ]
    procs = [subprocess.Popen([*POINTSMAN, *fake_args], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)]
    try:
        (tmp / "config.toml").write_text(config(fake_port))
        ports: dict[str, int] = {}
        pids: dict[str, int] = {}
        for name, extra in (("pointsman", {}), ("baseline", {"PYTHONPATH": str(args.baseline.resolve())})):
            ports[name] = free_port()
            serve = [
                "serve",
                "--port",
                str(ports[name]),
                "--open-access",
                "--config",
                str(tmp / "config.toml"),
            ]
            proc = subprocess.Popen(
                [*POINTSMAN, *serve, "--no-stats"],
                env={**env, **extra},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
            procs.append(proc)
            pids[name] = proc.pid
        wait_http(f"http://127.0.0.1:{fake_port}/healthz", procs[0], 60, "fake provider")
        for name, port in ports.items():
            wait_http(f"http://127.0.0.1:{port}/healthz", procs[1 + list(ports).index(name)], 120, name)
        reqs = {"direct": request(fake_port, "fake-model")}
        reqs.update({n: request(port, "fake-model@fast") for n, port in ports.items()})
        asyncio.run(measure(reqs, pids, args.blocks, args.streams, args.block_s))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
