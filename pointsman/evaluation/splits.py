"""Honest train/test splits: a router is never evaluated on a prompt it trained on.

Rules, in order:

1. the data comes with a ``test`` split (RouterBench, LLMRouter): train on ``train``, evaluate on ``test``;
   training rows whose prompt text also appears in the test split are dropped;
2. fewer than ``kfold_below`` distinct prompts (or ``folds`` asked for explicitly): k-fold cross-validation,
   every prompt evaluated once by a router that did not see it;
3. otherwise a fixed, seeded holdout of ``test_fraction`` of the prompts.

Folds and holdouts are made over distinct prompt texts, so a prompt that a source lists twice (RouteLLM's MMLU
repeats some questions under two tasks) always lands on one side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pointsman.data import RoutingRecord
from pointsman.errors import DataError

__all__ = ["Fold", "SplitPlan", "plan_splits", "subsample"]


@dataclass(frozen=True)
class Fold:
    train: list[int]  # indices into the dataset's records
    test: list[int]


@dataclass(frozen=True)
class SplitPlan:
    kind: str  # "source test split" | "k-fold" | "holdout"
    description: str
    folds: list[Fold]


def _groups(records: Sequence[RoutingRecord]) -> tuple[list[str], dict[str, list[int]]]:
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        groups.setdefault(r.prompt, []).append(i)
    return list(groups), groups


def plan_splits(
    records: Sequence[RoutingRecord],
    *,
    seed: int = 0,
    folds: int | None = None,
    test_fraction: float = 0.2,
    kfold_below: int = 2000,
) -> SplitPlan:
    """Decide how to split ``records`` (see the module docstring)."""
    test = [i for i, r in enumerate(records) if r.split == "test"]
    if test and folds is None:
        test_prompts = {records[i].prompt for i in test}
        train = [i for i, r in enumerate(records) if r.split == "train" and r.prompt not in test_prompts]
        dropped = sum(1 for r in records if r.split == "train" and r.prompt in test_prompts)
        if train:
            note = f"; {dropped} train rows sharing a prompt with test dropped" if dropped else ""
            return SplitPlan(
                "source test split",
                f"the source's own split: {len(train)} train / {len(test)} test rows{note}",
                [Fold(train, test)],
            )
    keys, groups = _groups(records)
    rng = np.random.default_rng(seed)
    order = [keys[i] for i in rng.permutation(len(keys))]
    if folds is not None or len(keys) < kfold_below:
        k = folds if folds is not None else 5
        if k < 2 or k > len(keys):
            raise DataError(
                f"cannot make {k} folds from {len(keys)} distinct prompts; give --folds between 2 and {len(keys)}"
            )
        parts = [order[f::k] for f in range(k)]
        out = []
        for f in range(k):
            test_keys = set(parts[f])
            test_idx = sorted(i for key in parts[f] for i in groups[key])
            train_idx = sorted(i for key in keys if key not in test_keys for i in groups[key])
            out.append(Fold(train_idx, test_idx))
        return SplitPlan(
            "k-fold",
            f"{k}-fold cross-validation over {len(keys)} distinct prompts (seed {seed}), grouped by prompt text",
            out,
        )
    n_test = max(1, round(len(keys) * test_fraction))
    test_keys = set(order[:n_test])
    test_idx = sorted(i for key in order[:n_test] for i in groups[key])
    train_idx = sorted(i for key in keys if key not in test_keys for i in groups[key])
    return SplitPlan(
        "holdout",
        f"seeded holdout (seed {seed}): {len(keys) - n_test} train / {n_test} test distinct prompts, "
        "grouped by prompt text",
        [Fold(train_idx, test_idx)],
    )


def subsample(
    records: Sequence[RoutingRecord], max_prompts: int | None, *, seed: int = 0
) -> list[RoutingRecord]:
    """At most ``max_prompts`` distinct training prompts (all rows of each kept prompt), drawn with a fixed seed;
    a source's own ``test`` split is always kept whole. ``None`` keeps everything."""
    keys, groups = _groups(records)
    test_keys = {key for key in keys if any(records[i].split == "test" for i in groups[key])}
    train_keys = [key for key in keys if key not in test_keys]
    if max_prompts is None or len(train_keys) <= max_prompts:
        return list(records)
    rng = np.random.default_rng(seed)
    keep: set[int] = {i for key in test_keys for i in groups[key]}
    for j in rng.permutation(len(train_keys))[:max_prompts]:
        keep.update(groups[train_keys[j]])
    return [records[i] for i in sorted(keep)]
