"""``random``: a router that knows nothing — every predicted quality is uniform on 0..1.

Swept over the cost weight it mixes candidates at random, from uniform picks (λ = 0) to the cheapest call; on
a strong/weak pair its expected APGR is 0.5. Any router worth using must beat it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pointsman.baselines._common import check_options, training_models
from pointsman.data import RoutingRecord
from pointsman.scorer.base import Prediction, Scorer, register_scorer

__all__ = ["RandomScorer"]


@register_scorer
class RandomScorer(Scorer):
    name = "random"

    def __init__(self, models: Sequence[str], seed: int = 0) -> None:
        self._models = list(models)
        self._rng = np.random.default_rng(seed)

    @property
    def models(self) -> list[str]:
        return list(self._models)

    @classmethod
    def fit(
        cls,
        records: Sequence[RoutingRecord],
        *,
        seed: int = 0,
        target_source: str | None = None,
        **options: Any,
    ) -> RandomScorer:
        check_options(cls.name, options, ())
        return cls(training_models(records), seed=seed)

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        self.check_models(models)
        return Prediction(models=list(models), quality=self._rng.random((len(prompts), len(models))))
