"""How far could any prompt-only router get on arena-bench-v1-dev's APGR pair? An upper-bound analysis.

A router that reads only the prompt can at best know how *hard* the prompt is. This script gives routers
knowledge no real router has — another LLM's actual judged grade on the same prompt, or the mean of all other
LLMs' grades — and prints the APGR (gpt-4-1106-preview vs mixtral-8x7b-instruct-v0.1) each would reach, next to
random, length and the oracle, with each margin's correlation with the pair's actual grade gap.

It then turns APGR into the correlation a router's margin needs with the actual gap: margins built as
``rho * gap + noise`` (standardised, many draws) show which rho reaches APGR 0.60 and 0.75 on these prompts.
With ``--neural`` it also runs the neural scorer's 5-fold cross-validation (each fold adapts the shipped base on
its training prompts, as ``pointsman eval`` does) and reports how its out-of-fold margin correlates with the gap
and with the leaked difficulty signal, so the scorer's APGR can be read against both.

    python benchmarks/arena_ceiling.py [--data PATH] [--neural] [--fold-seeds 0,1,2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pointsman.data import RoutingRecord, load_routing, shared_data_dir
from pointsman.evaluation.metrics import apgr, pgr_curve

STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"


def neural_margins(records: list[RoutingRecord], rows: list[RoutingRecord], seeds: list[int]) -> np.ndarray:
    """Out-of-fold margin (strong minus weak) of the neural scorer for ``rows``, averaged over fold seeds."""
    import torch

    from pointsman.evaluation.splits import plan_splits, subsample
    from pointsman.scorer.neural import NeuralScorer

    torch.set_num_threads(1)
    margins: dict[str, list[float]] = {}
    for seed in seeds:
        recs = subsample(records, 3000, seed=seed)
        plan = plan_splits(recs, seed=seed, folds=None, test_fraction=0.2, kfold_below=2000)
        for fold in plan.folds:
            scorer = NeuralScorer.fit([recs[i] for i in fold.train], target_source=recs[0].source)
            test = [recs[i] for i in fold.test]
            q = scorer.predict([r.prompt for r in test], [STRONG, WEAK]).quality
            for r, (s, w) in zip(test, q, strict=True):
                margins.setdefault(r.prompt, []).append(float(s - w))
    return np.array([np.mean(margins[r.prompt]) for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = shared_data_dir()
    default = shared / "routing" / "arena-bench-v1-dev.jsonl.gz" if shared else None
    parser.add_argument("--data", type=Path, default=default, help="arena-bench-v1-dev.jsonl.gz")
    parser.add_argument("--draws", type=int, default=1000, help="random routers to average")
    parser.add_argument("--neural", action="store_true", help="also cross-validate the shipped neural scorer")
    parser.add_argument("--fold-seeds", default="0,1,2", help="fold seeds for --neural (comma-separated)")
    args = parser.parse_args()
    if args.data is None or not args.data.exists():
        raise SystemExit("no arena-bench-v1-dev data: pass --data PATH (it lives in ../shared/data/routing)")

    records = load_routing(args.data)
    rows = [r for r in records if STRONG in r.scores and WEAK in r.scores]
    qs = np.array([r.scores[STRONG] for r in rows])
    qw = np.array([r.scores[WEAK] for r in rows])
    gap = qs - qw

    def score(margin: np.ndarray) -> float:
        curve = pgr_curve(margin, qs, qw)
        assert curve is not None, "the two models have the same mean grade"
        return apgr(curve)

    def line(name: str, margin: np.ndarray) -> None:
        print(f"{name:62s} {score(margin):.3f}  {np.corrcoef(margin, gap)[0, 1]:+.3f}")

    rng = np.random.default_rng(0)
    randoms = [score(rng.random(len(rows))) for _ in range(args.draws)]
    others = sorted({m for r in rows for m in r.scores} - {STRONG, WEAK})
    grade = {m: np.array([r.scores.get(m, np.nan) for r in rows]) for m in others}
    mean_others = np.nanmean(np.stack([grade[m] for m in others]), axis=0)

    print(f"{len(rows)} prompts labelled for both {STRONG} and {WEAK}\n")
    print(f"{'router (margin = preference for the strong model)':62s} APGR   corr(margin, gap)")
    lo, hi = np.percentile(randoms, [5, 95])
    print(
        f"{'random (mean of draws; 90% of draws in brackets)':62s} {np.mean(randoms):.3f} [{lo:.3f}, {hi:.3f}]"
    )
    line("longer prompt -> strong", np.log([len(r.prompt) + 1 for r in rows]))
    line(f"LEAK: mean grade of the {len(others)} other LLMs is low -> strong", -mean_others)
    for m in others:
        x = np.where(np.isnan(grade[m]), np.nanmean(grade[m]), grade[m])
        line(f"LEAK: {m} graded low -> strong", -x)
    line(f"LEAK: {WEAK} itself graded low -> strong", -qw)
    line("oracle (the true grade gap)", gap)

    print("\nAPGR of a margin that correlates rho with the actual gap (rho * gap + noise, standardised;")
    print(f"mean of {args.draws // 4} draws, 90% of draws in brackets):")
    z = (gap - gap.mean()) / gap.std()
    for rho in (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6):
        draws = [
            score(rho * z + np.sqrt(1 - rho**2) * rng.standard_normal(len(z))) for _ in range(args.draws // 4)
        ]
        d_lo, d_hi = np.percentile(draws, [5, 95])
        print(f"  rho {rho:.2f}: APGR {np.mean(draws):.3f} [{d_lo:.3f}, {d_hi:.3f}]")

    if args.neural:
        seeds = [int(s) for s in args.fold_seeds.split(",")]
        margin = neural_margins(records, rows, seeds)
        print(f"\nneural scorer, out-of-fold margin (5-fold CV, mean over fold seeds {seeds}):")
        print(
            f"  APGR {score(margin):.3f}; corr with the gap {np.corrcoef(margin, gap)[0, 1]:+.3f}; ", end=""
        )
        print(
            f"corr with the leaked difficulty (-mean of others) {np.corrcoef(margin, -mean_others)[0, 1]:+.3f}"
        )
        print(f"  corr of the leaked difficulty with the gap: {np.corrcoef(-mean_others, gap)[0, 1]:+.3f}")


if __name__ == "__main__":
    main()
