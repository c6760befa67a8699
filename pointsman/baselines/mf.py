"""``mf``: matrix factorisation over prompt embeddings, RouteLLM-style.

    score(m, p) = w_m · (W · e_p) + b_m

``e_p`` is the prompt's MiniLM embedding (H = 384), ``W`` (d × H) projects it into a small latent space shared
by all models, ``w_m`` (d) and ``b_m`` are each model's latent vector and bias. RouteLLM fits the same form by
SGD on pairwise preferences; our labels are absolute grades (in per-source standardised units, see
``pointsman.baselines._common``), so the fit is a regression, and it is done in closed form — quick and
deterministic even on a busy 2-core machine:

1. per model, a ridge regression of its labels on the embeddings of the prompts where it was labelled, with
   the ridge strength chosen from a log grid by exact leave-one-out error (computed from one SVD per set of
   labelled prompts);
2. a rank-d truncation of the stacked coefficients (reduced-rank regression: the top-d directions of the
   fitted scores), which gives ``W`` and the ``w_m``. With no more models than ``d`` nothing is truncated.
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

__all__ = ["MFConfig", "MFScorer", "fit_factors"]

Embedder = Callable[[Sequence[str]], np.ndarray]
RIDGE_GRID = tuple(10.0**k for k in range(-3, 4))  # candidate ridge strengths


@dataclass(frozen=True)
class MFConfig:
    dim: int = 32  # latent size d


def _ridge_loo(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ridge coefficients (H, K) of each column of ``y`` (n, K) on ``x`` (n, H), both centred, each column with
    the strength from ``RIDGE_GRID`` that minimises its exact leave-one-out error."""
    s2, v = np.linalg.eigh(x.T @ x)  # x'x = v diag(s2) v'
    s2 = np.clip(s2, 0.0, None)
    p = x @ v  # (n, H): x in the eigenbasis
    p2 = p**2
    pty = p.T @ y  # (H, K)
    best_err = np.full(y.shape[1], np.inf)
    best_c = np.zeros_like(pty)
    for alpha in RIDGE_GRID:
        c = pty / (s2 + alpha)[:, None]  # (H, K)
        hat = p2 @ (1.0 / (s2 + alpha))  # (n,) leverage of each row
        loo = (y - p @ c) / np.maximum(1.0 - hat, 1e-6)[:, None]  # (n, K)
        err = np.mean(loo**2, axis=0)
        better = err < best_err
        best_err[better] = err[better]
        best_c[:, better] = c[:, better]
    return v @ best_c  # (H, K)


def fit_factors(emb: np.ndarray, z: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``z[i, m] ≈ latents[m] · (projection @ emb[i]) + bias[m]`` on the observed (non-NaN) labels.

    Returns ``projection`` (d, H), ``latents`` (M, d) and ``bias`` (M,), with d = min(dim, M)."""
    n, h = emb.shape
    m = z.shape[1]
    assert z.shape[0] == n, "one label row per embedding"
    x = emb.astype(np.float64)
    coef = np.zeros((h, m))
    bias = np.zeros(m)
    observed = ~np.isnan(z)
    groups: dict[bytes, list[int]] = {}  # models labelled on exactly the same prompts share one decomposition
    for j in range(m):
        groups.setdefault(observed[:, j].tobytes(), []).append(j)
    for cols in groups.values():
        rows = observed[:, cols[0]]
        if rows.sum() < 2:
            bias[cols] = [float(z[rows, j].mean()) if rows.any() else 0.0 for j in cols]
            continue
        xg, yg = x[rows], z[np.ix_(rows, cols)]
        x_mean, y_mean = xg.mean(axis=0), yg.mean(axis=0)
        beta = _ridge_loo(xg - x_mean, yg - y_mean)  # (H, K)
        coef[:, cols] = beta
        bias[cols] = y_mean - x_mean @ beta
    d = min(dim, m)
    # Reduced rank: the top-d right singular vectors of the fitted scores span the models' latent space.
    _, _, vt = np.linalg.svd(x @ coef, full_matrices=False)  # vt: (min(n, M), M)
    basis = vt[:d].T  # (M, d)
    if basis.shape[1] < d:  # fewer prompts than models: pad with zero directions
        basis = np.pad(basis, ((0, 0), (0, d - basis.shape[1])))
    projection = (coef @ basis).T  # (d, H): W
    return projection, basis, bias  # the latents w_m are the rows of basis


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
        """Options: ``dim`` (latent size d, default 32), ``embedder`` (texts → (N, H); default cached MiniLM).
        The fit is deterministic, so ``seed`` is not used."""
        check_options(cls.name, options, ("dim", "embedder"))
        embedder: Embedder = options.get("embedder") or default_embedder()
        config = MFConfig(dim=int(options.get("dim", MFConfig.dim)))
        if config.dim < 1:
            raise ConfigError(f"mf needs dim >= 1, got {config.dim}")
        models = training_models(records)
        scales = SourceScales.fit(records, pick_target(records, target_source))
        z = scales.standardise(records, label_matrix(records, models))
        emb = np.asarray(embedder([r.prompt for r in records]), dtype=np.float32)
        projection, latents, bias = fit_factors(emb, z, config.dim)
        return cls(models, projection, latents, bias, scales, embedder)

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        self.check_models(models)
        cols = [self._col[m] for m in models]
        if not prompts:
            return Prediction(models=list(models), quality=np.zeros((0, len(models))))
        emb = np.asarray(self.embedder(list(prompts)), dtype=np.float64)  # (P, H)
        z = (emb @ self.projection.T) @ self.latents[cols].T + self.bias[cols]  # (P, M)
        return Prediction(models=list(models), quality=self.scales.to_target(z))
