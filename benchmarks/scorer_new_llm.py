"""Adding a new LLM from a few labelled prompts, by fitting only its latent, against a full retrain.

The full retrain is a checkpoint that saw the LLM in training (every label of it in the training split). We
pretend the LLM is new: a fresh latent (started at the mean latent) is fitted on N labelled prompts of the
training split, with everything else frozen, and both are compared on prompts of the checkpoint's validation
split (never trained on by either): error against the labels, and how close the two predict (correlation).

    nice -n 10 .venv/bin/python benchmarks/scorer_new_llm.py --checkpoint pointsman/data/scorer/base \\
        --data ../shared/data/routing/alpacaeval2.jsonl.gz --model gemma-7b-it --source alpacaeval2
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from pointsman.data import RoutingRecord, load_routing
from pointsman.scorer.adapt import AdaptOptions, adapt, extend
from pointsman.scorer.checkpoint import load_model
from pointsman.scorer.dataset import split_by_prompt
from pointsman.scorer.ensemble import members_of
from pointsman.scorer.neural import NeuralScorer


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sizes", default="50,100,200")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="as in the checkpoint's recipe")
    parser.add_argument("--seed", type=int, default=0, help="the checkpoint's training seed (its split)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    full, _ = load_model(args.checkpoint)
    assert args.model in full.config.models, (
        f"{args.model} is not in the checkpoint; pick one it was trained on"
    )
    rows = [r for r in load_routing(args.data) if args.model in r.scores and r.split == "train"]
    train_rows, val_rows = split_by_prompt(rows, val_fraction=args.val_fraction, seed=args.seed)
    scorer = NeuralScorer(full, source=args.source)
    val_prompts = [r.prompt for r in val_rows]
    truth = np.array([r.scores[args.model] for r in val_rows])
    states_val = scorer.prompt_states(val_prompts)
    full_pred = scorer.predict_states(states_val, [args.model]).quality[:, 0]
    mean_pred = np.full_like(truth, np.mean([r.scores[args.model] for r in train_rows]))
    print(f"{args.model} on {len(val_rows)} validation prompts of {args.source}")
    print(f"{'method':<28} {'MAE':>6} {'corr(label)':>11} {'corr(full)':>10} {'fit s':>6}")

    def line(name: str, pred: np.ndarray, seconds: float) -> None:
        mae = float(np.abs(pred - truth).mean())
        c_label = float(np.corrcoef(pred, truth)[0, 1]) if pred.std() > 0 else float("nan")
        c_full = float(np.corrcoef(pred, full_pred)[0, 1]) if pred.std() > 0 else float("nan")
        print(f"{name:<28} {mae:>6.3f} {c_label:>11.3f} {c_full:>10.3f} {seconds:>6.1f}")

    line("full retrain (saw it)", full_pred, 0.0)
    line("mean of its labels", mean_pred, 0.0)
    rng = np.random.default_rng(0)
    for n in [int(s) for s in args.sizes.split(",")]:
        pick = rng.choice(len(train_rows), size=min(n, len(train_rows)), replace=False)
        new_name = args.model + "@new"
        few = [
            RoutingRecord(
                r.id, args.source, r.task, r.split, r.prompt, r.label, {new_name: r.scores[args.model]}
            )
            for r in (train_rows[i] for i in pick)
        ]
        start = time.perf_counter()
        extended = extend(full, [new_name], args.source)
        for member in members_of(extended):
            member.config.default_source = full.config.default_source
        prompts = [r.prompt for r in few]
        tmp = NeuralScorer(extended, encoder=scorer.encoder, source=args.source)
        states = tmp.prompt_states(prompts)
        fitted = adapt(
            extended,
            few,
            states,
            {p: i for i, p in enumerate(prompts)},
            source=args.source,
            new_models=[new_name],
            options=AdaptOptions(train_head=False, train_latents="new"),
        )
        seconds = time.perf_counter() - start
        pred = NeuralScorer(fitted, encoder=scorer.encoder, source=args.source).predict_states(
            states_val, [new_name]
        )
        line(f"latent only, {len(few)} prompts", pred.quality[:, 0], seconds)


if __name__ == "__main__":
    main()
