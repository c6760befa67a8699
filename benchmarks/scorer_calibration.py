"""Is the scorer's uncertainty calibrated? On the validation prompts of a checkpoint's training recipe (never
trained on), compare the predicted std with the actual error of the predicted mean, per source.

    nice -n 10 .venv/bin/python benchmarks/scorer_calibration.py --checkpoint pointsman/data/scorer/base \\
        --config scripts/scorer_base.json --data ../shared/data/routing/*.jsonl.gz [--cache DIR]

Prints, per source: labels, MAE, mean predicted std, RMSE, the share of labels within 1 std (a Gaussian would
give 68%) and within 1.645 std (90%), and the rank correlation between std and |error| (does the scorer know
when it is unsure?).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from pointsman.data import load_routing_files
from pointsman.scorer.checkpoint import load_model
from pointsman.scorer.dataset import split_by_prompt
from pointsman.scorer.neural import NeuralScorer
from pointsman.scorer.states import StatesCache
from pointsman.scorer.train import TrainConfig, prepare_records


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 2 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", nargs="+", required=True)
    parser.add_argument("--cache", default=None)
    parser.add_argument("--max-prompts", type=int, default=1500)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    cfg = TrainConfig(**json.loads(Path(args.config).read_text()))
    model, _ = load_model(args.checkpoint)
    records = prepare_records(load_routing_files(args.data), cfg)
    _, val = split_by_prompt(records, val_fraction=cfg.val_fraction, seed=cfg.seed)
    val = [r for r in val if r.source in model.config.sources][: args.max_prompts]
    prompts = list(dict.fromkeys(r.prompt for r in val))
    if args.cache:
        cache = StatesCache(args.cache, model.config.encoder, model.config.max_tokens)
        states = cache.gather(prompts)
    else:
        states = NeuralScorer(model).prompt_states(prompts)
    row = {p: i for i, p in enumerate(prompts)}
    errors: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for source in sorted({r.source for r in val}):
        scorer = NeuralScorer(model, source=source)
        for r in (r for r in val if r.source == source):
            models = [m for m in r.scores if m in model.config.models]
            if not models:
                continue
            sub = states.get(row[r.prompt])
            from pointsman.scorer.states import PromptStates

            pred = scorer.predict_states(PromptStates.pack([sub]), models)
            assert pred.uncertainty is not None
            for j, m in enumerate(models):
                errors[source].append(
                    (r.scores[m] - float(pred.quality[0, j]), float(pred.uncertainty[0, j]))
                )
    print(
        f"{'source':<16} {'labels':>6} {'MAE':>6} {'RMSE':>6} {'mean std':>8} {'<=1std':>7} {'<=1.645':>7} {'rho':>6}"
    )
    for source, pairs in errors.items():
        e = np.array([p[0] for p in pairs])
        s = np.array([p[1] for p in pairs])
        print(
            f"{source:<16} {len(e):>6} {np.abs(e).mean():>6.3f} {np.sqrt((e**2).mean()):>6.3f} {s.mean():>8.3f} "
            f"{(np.abs(e) <= s).mean():>7.2f} {(np.abs(e) <= 1.645 * s).mean():>7.2f} {spearman(s, np.abs(e)):>6.2f}"
        )


if __name__ == "__main__":
    main()
