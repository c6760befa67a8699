"""Routing records turned into what the scorer trains on: prompts, (model, source, label) triples, splits.

A training example is one prompt with every labelled model on it; the model scores all of them in one pass
over the prompt's cached states. Sources keep their own head (scales differ), and each source's loss weight is
set so that a giant source (RouteLLM's 14k MMLU rows) cannot drown the small judged ones.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pointsman.data import RoutingRecord

__all__ = ["Example", "build_examples", "select_records", "split_by_prompt", "stable_fraction"]


def stable_fraction(text: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``text`` and ``seed``: splits and subsamples that never depend on order."""
    digest = hashlib.sha256(f"{seed}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def select_records(
    records: Sequence[RoutingRecord], *, max_per_task: dict[str, int] | None = None, seed: int = 0
) -> list[RoutingRecord]:
    """Subsample over-represented tasks: ``max_per_task`` maps ``"source/task-prefix"`` to a cap on prompts
    (e.g. ``{"routellm-mmlu": 3000}``). Which prompts are kept depends only on their text and the seed."""
    if not max_per_task:
        return list(records)
    counts: Counter[str] = Counter()
    for r in records:
        for key in max_per_task:
            if _matches(r, key):
                counts[key] += 1
    keep: list[RoutingRecord] = []
    for r in records:
        found = next((k for k in max_per_task if _matches(r, k)), None)
        if found is None or counts[found] <= max_per_task[found]:
            keep.append(r)
            continue
        if stable_fraction(r.prompt, seed) < max_per_task[found] / counts[found]:
            keep.append(r)
    return keep


def _matches(r: RoutingRecord, key: str) -> bool:
    source, _, task = key.partition("/")
    return r.source == source and r.task.startswith(task)


def split_by_prompt(
    records: Sequence[RoutingRecord], *, val_fraction: float, seed: int
) -> tuple[list[RoutingRecord], list[RoutingRecord]]:
    """Train/validation split of the ``train`` rows by prompt text (a repeated prompt never straddles it)."""
    train: list[RoutingRecord] = []
    val: list[RoutingRecord] = []
    for r in records:
        (val if stable_fraction(r.prompt, seed + 7919) < val_fraction else train).append(r)
    return train, val


@dataclass(frozen=True)
class Example:
    """One prompt with every labelled model on it, under one source's head."""

    prompt: str
    source: int  # index into the config's sources
    models: tuple[int, ...]  # indices into the config's models
    labels: tuple[float, ...]
    weight: float


def build_examples(
    records: Sequence[RoutingRecord],
    models: Sequence[str],
    sources: Sequence[str],
    *,
    head_of: dict[str, str] | None = None,
    source_weight: dict[str, float] | None = None,
) -> list[Example]:
    """Examples for the models and sources the scorer knows; unknown ones are skipped. A source listed in
    ``head_of`` is read by the head of the source it maps to.

    Each source's total weight is proportional to sqrt(its label count) (times ``source_weight``), and is
    spread evenly over its labels: big sources still count more, but not linearly."""
    model_index = {m: i for i, m in enumerate(models)}
    heads = {s: i for i, s in enumerate(sources)}
    source_index = {s: heads[(head_of or {}).get(s, s)] for s in sources}
    labels_per_source: Counter[str] = Counter()
    for r in records:
        if r.source in source_index:
            labels_per_source[r.source] += sum(1 for m in r.scores if m in model_index)
    out: list[Example] = []
    for r in records:
        if r.source not in source_index:
            continue
        pairs = [(model_index[m], y) for m, y in sorted(r.scores.items()) if m in model_index]
        if not pairs:
            continue
        n = labels_per_source[r.source]
        per_label = math.sqrt(n) / n * (source_weight or {}).get(r.source, 1.0)
        out.append(
            Example(
                prompt=r.prompt,
                source=source_index[r.source],
                models=tuple(p[0] for p in pairs),
                labels=tuple(p[1] for p in pairs),
                weight=per_label,
            )
        )
    return out
