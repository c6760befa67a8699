"""What the learning baselines share: label matrices and per-source label scales.

Sources grade on different scales (a 0/1 correct flag, a judge's 1..10 grade / 10, a win rate), so a baseline
trained on several sources first standardises each source's labels — z = (score − mean) / std, with the mean
and std over every (prompt, model) label of that source in the training rows — learns in that shared space,
and maps its predictions back onto the target source's scale (mean + std · z), clipped to 0..1. With one
source this is an exact round trip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pointsman.data import RoutingRecord, models_in
from pointsman.errors import DataError

__all__ = ["SourceScales", "check_options", "label_matrix", "pick_target", "training_models"]


def label_matrix(records: Sequence[RoutingRecord], models: Sequence[str]) -> np.ndarray:
    """(N, M) labels, NaN where a model was not evaluated on a prompt."""
    out = np.full((len(records), len(models)), np.nan)
    col = {m: j for j, m in enumerate(models)}
    for i, r in enumerate(records):
        for m, s in r.scores.items():
            j = col.get(m)
            if j is not None:
                out[i, j] = s
    return out


def pick_target(records: Sequence[RoutingRecord], target_source: str | None) -> str:
    """The source whose scale predictions are on: ``target_source``, else the most common one."""
    if not records:
        raise DataError("no training records: give a routing-data file with at least one prompt")
    sources = Counter(r.source for r in records)
    if target_source is None:
        return sources.most_common(1)[0][0]
    if target_source not in sources:
        raise DataError(
            f"target source {target_source!r} is not in the training data (sources: {', '.join(sorted(sources))})",
            field="source",
        )
    return target_source


@dataclass(frozen=True)
class SourceScales:
    """Per-source mean and std of labels, and the target source to map predictions back to."""

    mean: dict[str, float]
    std: dict[str, float]
    target: str

    @classmethod
    def fit(cls, records: Sequence[RoutingRecord], target: str) -> SourceScales:
        values: dict[str, list[float]] = {}
        for r in records:
            values.setdefault(r.source, []).extend(r.scores.values())
        mean = {s: float(np.mean(v)) for s, v in values.items()}
        std = {s: max(float(np.std(v)), 1e-3) for s, v in values.items()}
        return cls(mean=mean, std=std, target=target)

    def standardise(self, records: Sequence[RoutingRecord], labels: np.ndarray) -> np.ndarray:
        """(N, M) labels → z-scores of their own source."""
        mu = np.array([self.mean[r.source] for r in records])[:, None]
        sd = np.array([self.std[r.source] for r in records])[:, None]
        return (labels - mu) / sd

    def to_target(self, z: np.ndarray) -> np.ndarray:
        """z-scores → the target source's scale, clipped to 0..1."""
        return np.clip(self.mean[self.target] + self.std[self.target] * z, 0.0, 1.0)


def training_models(records: Sequence[RoutingRecord]) -> list[str]:
    """Every model labelled somewhere in the training rows."""
    if not records:
        raise DataError("no training records: give a routing-data file with at least one prompt")
    models = models_in(records)
    if not models:
        raise DataError("the training records hold no labels")
    return models


def check_options(scorer: str, options: dict[str, object], allowed: Sequence[str]) -> None:
    """Reject options a baseline does not take, naming the ones it does."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        from pointsman.errors import ConfigError

        takes = ", ".join(allowed) if allowed else "no options"
        raise ConfigError(f"scorer {scorer!r} does not take {', '.join(unknown)}; it takes {takes}")
