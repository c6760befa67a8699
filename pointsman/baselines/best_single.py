"""``best-single``: the same prediction for every prompt — each model's mean training label.

At λ = 0 it sends everything to the model with the best mean training quality (the "best single model" a
user would pick by hand); as the cost weight grows it switches, still for every prompt at once, to cheaper
models. Its curve is what choosing one model per budget from a leaderboard delivers.

Means are taken on the target source's rows; a model never labelled there gets its mean over every source in
standardised units (see ``pointsman.baselines._common``), mapped onto the target's scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pointsman.baselines._common import (
    SourceScales,
    check_options,
    label_matrix,
    pick_target,
    training_models,
)
from pointsman.data import RoutingRecord
from pointsman.scorer.base import Prediction, Scorer, register_scorer

__all__ = ["BestSingleScorer"]


@register_scorer
class BestSingleScorer(Scorer):
    name = "best-single"

    def __init__(self, means: dict[str, float]) -> None:
        self.means = dict(means)

    @property
    def models(self) -> list[str]:
        return sorted(self.means)

    @classmethod
    def fit(
        cls,
        records: Sequence[RoutingRecord],
        *,
        seed: int = 0,
        target_source: str | None = None,
        **options: Any,
    ) -> BestSingleScorer:
        check_options(cls.name, options, ())
        models = training_models(records)
        target = pick_target(records, target_source)
        scales = SourceScales.fit(records, target)
        labels = label_matrix(records, models)  # (N, M)
        z = scales.standardise(records, labels)
        in_target = np.array([r.source == target for r in records])
        means: dict[str, float] = {}
        for j, m in enumerate(models):
            own = labels[in_target, j]
            own = own[~np.isnan(own)]
            if own.size:
                means[m] = float(own.mean())
            else:
                means[m] = float(scales.to_target(np.nanmean(z[:, j])))
        return cls(means)

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        self.check_models(models)
        row = np.array([self.means[m] for m in models])
        return Prediction(models=list(models), quality=np.tile(row, (len(prompts), 1)))
