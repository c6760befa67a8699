"""``knn``: predict a model's quality on a prompt from its labels on the k most similar training prompts.

Similarity is the cosine between MiniLM embeddings (``pointsman.baselines.embeddings``). For each model the
neighbours are the k training prompts most similar to the query among those where that model was labelled,
so sources that labelled different models can be mixed. Labels are averaged in per-source standardised units
and mapped onto the target source's scale (``pointsman.baselines._common``); the spread of the neighbours'
labels, divided by √k, is returned as the uncertainty. RouterBench's KNN router is the same idea.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pointsman.baselines._common import (
    SourceScales,
    check_options,
    label_matrix,
    pick_target,
    training_models,
)
from pointsman.baselines.embeddings import default_embedder
from pointsman.data import RoutingRecord
from pointsman.errors import ConfigError
from pointsman.scorer.base import Prediction, Scorer, register_scorer

__all__ = ["KNNScorer"]

Embedder = Callable[[Sequence[str]], np.ndarray]
_CHUNK = 512  # query prompts per similarity block


@register_scorer
class KNNScorer(Scorer):
    name = "knn"
    uses_prompt_embeddings = True

    def __init__(
        self,
        models: list[str],
        embeddings: np.ndarray,  # (N, H) training prompts
        z: np.ndarray,  # (N, M) standardised labels, NaN where missing
        scales: SourceScales,
        k: int,
        embedder: Embedder,
    ) -> None:
        assert embeddings.shape[0] == z.shape[0], "one embedding per training row"
        self._models = models
        self._col = {m: j for j, m in enumerate(models)}
        self.embeddings = embeddings.astype(np.float32)
        self.z = z
        self.scales = scales
        self.k = k
        self.embedder = embedder

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
    ) -> KNNScorer:
        """Options: ``k`` (neighbours, default 20), ``embedder`` (texts → (N, H); default cached MiniLM)."""
        check_options(cls.name, options, ("k", "embedder"))
        k = int(options.get("k", 20))
        if k < 1:
            raise ConfigError(f"knn needs k >= 1, got {k}")
        embedder: Embedder = options.get("embedder") or default_embedder()
        models = training_models(records)
        scales = SourceScales.fit(records, pick_target(records, target_source))
        z = scales.standardise(records, label_matrix(records, models))
        return cls(models, embedder([r.prompt for r in records]), z, scales, k, embedder)

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        self.check_models(models)
        n, m = len(prompts), len(models)
        mean = np.zeros((n, m))
        spread = np.zeros((n, m))
        if n == 0:
            return Prediction(models=list(models), quality=mean, uncertainty=spread)
        queries = np.asarray(self.embedder(list(prompts)), dtype=np.float32)  # (P, H)
        for j, model in enumerate(models):
            column = self.z[:, self._col[model]]
            rows = np.flatnonzero(~np.isnan(column))
            k = min(self.k, rows.size)
            base, labels = self.embeddings[rows], column[rows]
            for start in range(0, n, _CHUNK):
                sims = queries[start : start + _CHUNK] @ base.T  # (B, Nj)
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]  # (B, k)
                values = labels[top]  # (B, k)
                mean[start : start + _CHUNK, j] = values.mean(axis=1)
                spread[start : start + _CHUNK, j] = values.std(axis=1) / np.sqrt(k)
        target = self.scales.target
        quality = self.scales.to_target(mean)
        uncertainty = spread * self.scales.std[target]
        return Prediction(models=list(models), quality=quality, uncertainty=uncertainty)
