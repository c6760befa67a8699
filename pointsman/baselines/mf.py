"""``mf``: matrix factorisation over prompt embeddings, RouteLLM-style.

    score(m, p) = w_m · (W · e_p) + b_m

``e_p`` is the prompt's MiniLM embedding (H = 384), ``W`` (d × H) projects it into a small latent space shared
by all models, ``w_m`` (d) and ``b_m`` are each model's latent vector and bias. RouteLLM fits the same form by
SGD on pairwise preferences; our labels are absolute grades (in per-source standardised units, see
``pointsman.baselines._common``), so the fit is a regression, and it is done in closed form — quick and
deterministic even on a busy 2-core machine:

1. per model, a ridge regression of its labels on the embeddings of the prompts where it was labelled, with
   the ridge strength chosen from a log grid by generalised cross-validation (from one eigendecomposition of
   the H × H Gram matrix per set of labelled prompts — sets that differ by at most 1% of their prompts are
   merged, the few missing labels filled with the model's mean — and models labelled on most prompts downdate
   the Gram matrix of all prompts instead of recomputing it);
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


def _ridge_gcv(gram: np.ndarray, xty: np.ndarray, yty: np.ndarray, n: int) -> np.ndarray:
    """Ridge coefficients (H, K) from the centred Gram matrix ``gram`` (H, H), ``xty`` = X'y (H, K) and
    ``yty`` = y'y (K,), each column with the strength from ``RIDGE_GRID`` that minimises generalised
    cross-validation, GCV(α) = n · RSS(α) / (n − tr H(α))², all from one eigendecomposition of ``gram``."""
    s2, v = np.linalg.eigh(gram)  # X'X = v diag(s2) v'
    s2 = np.clip(s2, 0.0, None)
    r = v.T @ xty  # (H, K)
    best_score = np.full(xty.shape[1], np.inf)
    best = np.zeros_like(r)
    for alpha in RIDGE_GRID:
        inv = 1.0 / (s2 + alpha)  # (H,)
        c = r * inv[:, None]  # coefficients in the eigenbasis
        rss = yty - 2.0 * np.sum(r * c, axis=0) + np.sum(s2[:, None] * c**2, axis=0)
        dof = float(np.sum(s2 * inv))
        score = n * np.maximum(rss, 0.0) / max(n - dof, 1e-6) ** 2
        better = score < best_score
        best_score[better] = score[better]
        best[:, better] = c[:, better]
    return v @ best  # (H, K)


def _ridge_gcv_dual(xc: np.ndarray, yc: np.ndarray) -> np.ndarray:
    """``_ridge_gcv`` for fewer rows than columns: the same fit from the n × n kernel ``xc xc'``."""
    s2, u = np.linalg.eigh(xc @ xc.T)  # (n,), (n, n)
    s2 = np.clip(s2, 0.0, None)
    uy = u.T @ yc  # (n, K)
    n = xc.shape[0]
    best_score = np.full(yc.shape[1], np.inf)
    best = np.zeros_like(uy)
    for alpha in RIDGE_GRID:
        shrink = s2 / (s2 + alpha)  # (n,)
        rss = np.sum(((1.0 - shrink)[:, None] * uy) ** 2, axis=0)  # yc has no component outside u
        score = n * rss / max(n - float(shrink.sum()), 1e-6) ** 2
        better = score < best_score
        best_score[better] = score[better]
        best[:, better] = (uy / (s2 + alpha)[:, None])[:, better]
    return xc.T @ (u @ best)  # (H, K): beta = X' (XX' + aI)^-1 y


def _label_groups(observed: np.ndarray, slack: float = 0.01) -> list[tuple[np.ndarray, list[int]]]:
    """Group models by the prompts they were labelled on, so each group needs one decomposition.

    Sources often leave a model unlabelled on a handful of prompts, which would give every model its own set.
    A set that differs from a group's by at most ``slack`` of its rows joins that group; the group's rows are
    the union and the few rows a model lacks are filled with its mean label. Returns (rows mask, models)."""
    groups: list[tuple[np.ndarray, list[int]]] = []
    order = np.argsort(-observed.sum(axis=0), kind="stable")
    for j in order:
        mask = observed[:, j]
        size = int(mask.sum())
        for g, (anchor, cols) in enumerate(groups):
            extra = int((mask & ~anchor).sum())
            lacking = int((anchor & ~mask).sum())
            if extra <= slack * size and lacking + extra <= slack * max(size, 1):
                groups[g] = (anchor | mask, [*cols, int(j)])
                break
        else:
            groups.append((mask.copy(), [int(j)]))
    return groups


def fit_factors(
    emb: np.ndarray, z: np.ndarray, dim: int, *, slack: float = 0.01
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``z[i, m] ≈ latents[m] · (projection @ emb[i]) + bias[m]`` on the observed (non-NaN) labels.

    Returns ``projection`` (d, H), ``latents`` (M, d) and ``bias`` (M,), with d = min(dim, M). ``slack``: see
    ``_label_groups`` (0 gives every distinct set of labelled prompts its own exact fit)."""
    n, h = emb.shape
    m = z.shape[1]
    assert z.shape[0] == n, "one label row per embedding"
    x = emb.astype(np.float64)
    gram_all, sum_all = x.T @ x, x.sum(axis=0)  # models labelled on most rows downdate these
    coef = np.zeros((h, m))
    bias = np.zeros(m)
    observed = ~np.isnan(z)
    for anchor, cols in _label_groups(observed, slack):
        n_g = int(anchor.sum())
        if n_g < 2:
            bias[cols] = [float(np.nanmean(z[anchor, j])) if n_g else 0.0 for j in cols]
            continue
        y = z[np.ix_(anchor, np.asarray(cols))]  # (n_g, K)
        y = np.where(np.isnan(y), np.nanmean(y, axis=0), y)  # the few unlabelled rows of a group: its mean
        y_mean = y.mean(axis=0)
        yc = y - y_mean
        if n_g < h:  # fewer prompts than dimensions: decompose the n × n kernel instead
            x_mean = x[anchor].mean(axis=0)
            beta = _ridge_gcv_dual(x[anchor] - x_mean, yc)
            coef[:, cols] = beta
            bias[cols] = y_mean - x_mean @ beta
            continue
        missing = ~anchor
        if missing.sum() <= n_g:
            gram = gram_all - x[missing].T @ x[missing]
            total = sum_all - x[missing].sum(axis=0)
        else:
            gram, total = x[anchor].T @ x[anchor], x[anchor].sum(axis=0)
        x_mean = total / n_g  # (H,)
        gram_c = gram - n_g * np.outer(x_mean, x_mean)
        xty = x[anchor].T @ yc  # (H, K); yc sums to 0, so centring x changes nothing here
        beta = _ridge_gcv(gram_c, xty, np.sum(yc**2, axis=0), n_g)  # (H, K)
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
