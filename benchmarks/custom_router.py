"""Custom router vs the off-the-shelf router on held-out prompts of a labelled dataset treated as "the user's
own traffic": import a sample (``custom import``), fine-tune from a base checkpoint (``custom train``), and
print the held-out AIQ of the custom router, the off-the-shelf router, the best single model and the oracle,
side by side, with medians over seeds.

    .venv/bin/python benchmarks/custom_router.py --data ../shared/data/routing/routerbench.jsonl.gz \
        --base pointsman/data/scorer/default --prompts 400 --seeds 0,1,2

The dataset's own test split is kept as the hold-out when it has one; otherwise 20% of the sampled prompts.
Prices: the catalogue's cheapest endpoint per model (models without one are dropped from the sample).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True, help="A routing-data .jsonl(.gz) file.")
    parser.add_argument("--base", required=True, help="The checkpoint to fine-tune from.")
    parser.add_argument("--prompts", type=int, default=400, help="Distinct prompts sampled per seed.")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch

    from pointsman.catalog import load_catalog
    from pointsman.custom.importer import import_file
    from pointsman.custom.store import CustomStore
    from pointsman.custom.train import TrainOptions, train_custom
    from pointsman.data import load_routing
    from pointsman.evaluation.costs import catalogue_prices

    torch.set_num_threads(args.threads)
    catalog = load_catalog()
    priced = set(catalogue_prices())
    records = [r for r in load_routing(args.data)]
    rows: dict[str, list[float]] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        rng = np.random.default_rng(seed)
        picked = [records[i] for i in rng.permutation(len(records))[: args.prompts]]
        with tempfile.TemporaryDirectory() as tmp:
            sample = Path(tmp) / "sample.jsonl"
            with sample.open("w") as out:
                for r in picked:
                    scores = {m: s for m, s in r.scores.items() if m in priced}
                    if len(scores) >= 2:
                        out.write(
                            json.dumps(
                                {
                                    "id": r.id,
                                    "source": "user",
                                    "split": r.split,
                                    "prompt": r.prompt,
                                    "scores": scores,
                                }
                            )
                            + "\n"
                        )
            with CustomStore.open(Path(tmp) / "data", "bench", create=True) as store:
                import_file(store, sample)
                start = time.perf_counter()
                summary = train_custom(
                    store,
                    catalog,
                    base=args.base,
                    options=TrainOptions(steps=args.steps, seed=seed, bootstrap=0, plots=False),
                )
                seconds = time.perf_counter() - start
        for name in ("custom-router", "off-the-shelf", "best-single", "oracle"):
            rows.setdefault(name, []).append(summary.aiq[name])
        rows.setdefault("seconds", []).append(seconds)
        print(
            f"seed {seed}: {summary.train_prompts} train / {summary.test_prompts} held-out prompts, "
            f"{len(summary.models)} models ({len(summary.new_models)} new to the base), {seconds:.0f}s: "
            + ", ".join(
                f"{k} {summary.aiq[k]:.4f}"
                for k in ("custom-router", "off-the-shelf", "best-single", "oracle")
            )
        )
    print()
    print(f"{'held-out AIQ (median over seeds)':<34} {'value':>8}")
    for name, values in rows.items():
        if name != "seconds":
            print(f"{name:<34} {statistics.median(values):>8.4f}")
    custom, shelf = statistics.median(rows["custom-router"]), statistics.median(rows["off-the-shelf"])
    print(f"{'custom / off-the-shelf':<34} {custom / shelf:>8.3f}")
    print(f"{'train + evaluate seconds (median)':<34} {statistics.median(rows['seconds']):>8.1f}")


if __name__ == "__main__":
    main()
