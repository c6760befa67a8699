"""How far could any prompt-only router get on arena-bench-v1-dev's APGR pair? An upper-bound analysis.

A router that reads only the prompt can at best know how *hard* the prompt is. This script gives routers
knowledge no real router has — another LLM's actual judged grade on the same prompt, or the mean of all other
LLMs' grades — and prints the APGR (gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1) each would reach, next to
random, length and the oracle. If even a leaked difficulty signal stays near 0.6, per-answer judge noise, not
the scorer, bounds what a prompt-only predictor can reach on these 146 prompts.

    python benchmarks/arena_ceiling.py [--data PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pointsman.data import load_routing, shared_data_dir
from pointsman.evaluation.metrics import apgr, pgr_curve

STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = shared_data_dir()
    default = shared / "routing" / "arena-bench-v1-dev.jsonl.gz" if shared else None
    parser.add_argument("--data", type=Path, default=default, help="arena-bench-v1-dev.jsonl.gz")
    parser.add_argument("--draws", type=int, default=1000, help="random routers to average")
    args = parser.parse_args()
    if args.data is None or not args.data.exists():
        raise SystemExit("no arena-bench-v1-dev data: pass --data PATH (it lives in ../shared/data/routing)")

    rows = [r for r in load_routing(args.data) if STRONG in r.scores and WEAK in r.scores]
    qs = np.array([r.scores[STRONG] for r in rows])
    qw = np.array([r.scores[WEAK] for r in rows])

    def score(margin: np.ndarray) -> float:
        curve = pgr_curve(margin, qs, qw)
        assert curve is not None, "the two models have the same mean grade"
        return apgr(curve)

    rng = np.random.default_rng(0)
    randoms = [score(rng.random(len(rows))) for _ in range(args.draws)]
    others = sorted({m for r in rows for m in r.scores} - {STRONG, WEAK})
    grade = {m: np.array([r.scores.get(m, np.nan) for r in rows]) for m in others}
    mean_others = np.nanmean(np.stack([grade[m] for m in others]), axis=0)

    print(f"{len(rows)} prompts labelled for both {STRONG} and {WEAK}\n")
    print(f"{'router (margin = preference for the strong model)':62s} APGR")
    lo, hi = np.percentile(randoms, [5, 95])
    print(
        f"{'random (mean of draws; 90% of draws in brackets)':62s} {np.mean(randoms):.3f} [{lo:.3f}, {hi:.3f}]"
    )
    print(f"{'longer prompt -> strong':62s} {score(np.log([len(r.prompt) + 1 for r in rows])):.3f}")
    print(f"{'LEAK: mean grade of the 13 other LLMs is low -> strong':62s} {score(-mean_others):.3f}")
    for m in others:
        x = np.where(np.isnan(grade[m]), np.nanmean(grade[m]), grade[m])
        print(f"{'LEAK: ' + m + ' graded low -> strong':62s} {score(-x):.3f}")
    print(f"{'oracle (the true grade gap)':62s} {score(qs - qw):.3f}")


if __name__ == "__main__":
    main()
