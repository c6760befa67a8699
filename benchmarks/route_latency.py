"""How fast the foundation's routing is: building a Router, one ``rank`` call, and ``pointsman route`` as a
whole process (what a user waits for), with the prior scorer and the shipped catalogue.

Prints medians (and p90) of each, in milliseconds, and the share of a CLI call spent ranking.

Usage:  python benchmarks/route_latency.py [--repeats 200] [--cli-repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

PROMPT = "What is the largest of 3, 9 and 4?"


def timed(fn: object, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        out.append((time.perf_counter() - start) * 1000)
    return sorted(out)


def show(name: str, ms: list[float]) -> None:
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    print(f"{name:44s} median {statistics.median(ms):8.2f} ms   p90 {p90:8.2f} ms   (n={len(ms)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--cli-repeats", type=int, default=5)
    args = parser.parse_args()

    from pointsman.catalog import load_catalog
    from pointsman.router import Router
    from pointsman.scorer.prior import PriorScorer

    # The prior, named (the default is now the neural scorer: benchmarks/scorer_default.py measures it).
    build = timed(lambda: Router(catalog=load_catalog(), scorer=PriorScorer()), max(5, args.repeats // 20))
    router = Router(scorer=PriorScorer())
    rank_default = timed(lambda: router.rank(PROMPT), args.repeats)
    rank_filtered = timed(
        lambda: router.rank(PROMPT, "router@q:1|c<1|models:mixtral-8x7b-instruct-v0.1,llama-2-70b-chat"),
        args.repeats,
    )
    long_prompt = "word " * 20000
    rank_long = timed(lambda: router.rank(long_prompt), max(5, args.repeats // 10))
    cli = timed(
        lambda: subprocess.run(
            [
                sys.executable,
                "-c",
                "from pointsman.cli import main; main()",
                "route",
                PROMPT,
                "--json",
                "--scorer",
                "prior",
            ],
            check=True,
            capture_output=True,
        ),
        args.cli_repeats,
    )
    show("Router() (load catalogue + prior)", build)
    show("rank(prompt) default router, all endpoints", rank_default)
    show("rank(prompt) filtered router string", rank_filtered)
    show("rank(100k-char prompt) (token estimate)", rank_long)
    show("pointsman route --json (whole process)", cli)
    print(
        f"ranking is {statistics.median(rank_default) / statistics.median(cli):.1%} of a CLI call; "
        "the rest is interpreter start-up and imports"
    )


if __name__ == "__main__":
    main()
