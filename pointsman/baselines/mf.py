"""``mf``: matrix factorisation over prompt embeddings, RouteLLM-style.

    score(m, p) = w_m · (W · e_p) + b_m

``e_p`` is the prompt's MiniLM embedding (H = 384), ``W`` (d × H) projects it to a small latent space,
``w_m`` (d) and ``b_m`` are each model's latent vector and bias. It is fitted by AdamW on the mean squared
error against every observed label, in per-source standardised units (``pointsman.baselines._common``), and
predictions are mapped onto the target source's scale. RouteLLM trains the same form on pairwise preferences;
here the labels are absolute grades, so the loss is a regression.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
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

__all__ = ["MFConfig", "MFScorer"]

Embedder = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class MFConfig:
    dim: int = 64  # latent size d
    steps: int = 300  # full-batch AdamW steps
    lr: float = 1e-2
    weight_decay: float = 1e-3


def _train(emb: np.ndarray, z: np.ndarray, config: MFConfig, seed: int) -> tuple[np.ndarray, ...]:
    import torch

    torch.manual_seed(seed)
    x = torch.from_numpy(emb.astype(np.float32))  # (N, H)
    target = torch.from_numpy(np.nan_to_num(z).astype(np.float32))  # (N, M)
    mask = torch.from_numpy(~np.isnan(z)).float()  # (N, M)
    n_obs = mask.sum().clamp(min=1.0)
    h, m = x.shape[1], z.shape[1]
    proj = torch.nn.Linear(h, config.dim, bias=False)  # W
    latents = torch.nn.Parameter(torch.randn(m, config.dim) / config.dim**0.5)  # w_m, (M, d)
    bias = torch.nn.Parameter(torch.zeros(m))  # b_m
    params = [*proj.parameters(), latents, bias]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    for _ in range(config.steps):
        scores = proj(x) @ latents.T + bias  # (N, M)
        loss = (((scores - target) ** 2) * mask).sum() / n_obs
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (
        proj.weight.detach().numpy().copy(),  # (d, H)
        latents.detach().numpy().copy(),  # (M, d)
        bias.detach().numpy().copy(),  # (M,)
    )


@register_scorer
class MFScorer(Scorer):
    name = "mf"
    uses_prompt_embeddings = True

    def __init__(
        self,
        models: list[str],
        projection: np.ndarray,
        latents: np.ndarray,
        bias: np.ndarray,
        scales: SourceScales,
        embedder: Embedder,
    ) -> None:
        assert latents.shape == (len(models), projection.shape[0]), "one latent of size d per model"
        self._models = models
        self._col = {m: j for j, m in enumerate(models)}
        self.projection, self.latents, self.bias = projection, latents, bias
        self.scales = scales
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
    ) -> MFScorer:
        """Options: ``dim``, ``steps``, ``lr``, ``weight_decay`` (see ``MFConfig``), ``embedder``."""
        check_options(cls.name, options, ("dim", "steps", "lr", "weight_decay", "embedder"))
        embedder: Embedder = options.pop("embedder", None) or default_embedder()
        try:
            config = MFConfig(**options)
        except TypeError as exc:  # pragma: no cover - check_options rejects unknown names first
            raise ConfigError(f"bad mf option: {exc}") from exc
        if config.dim < 1 or config.steps < 1 or config.lr <= 0:
            raise ConfigError(f"mf needs dim >= 1, steps >= 1 and lr > 0, got {config}")
        models = training_models(records)
        scales = SourceScales.fit(records, pick_target(records, target_source))
        z = scales.standardise(records, label_matrix(records, models))
        emb = np.asarray(embedder([r.prompt for r in records]), dtype=np.float32)
        projection, latents, bias = _train(emb, z, config, seed)
        return cls(models, projection, latents, bias, scales, embedder)

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        self.check_models(models)
        cols = [self._col[m] for m in models]
        if not prompts:
            return Prediction(models=list(models), quality=np.zeros((0, len(models))))
        emb = np.asarray(self.embedder(list(prompts)), dtype=np.float32)  # (P, H)
        z = (emb @ self.projection.T) @ self.latents[cols].T + self.bias[cols]  # (P, M)
        return Prediction(models=list(models), quality=self.scales.to_target(z))
