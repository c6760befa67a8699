"""The quality–cost sweep: route every prompt at many cost weights and measure what that delivers.

At cost weight λ each prompt goes to ``argmax_m  predicted_quality[m] − λ · expected_cost[m]``; the last point
(λ = ∞) takes the cheapest expected call, breaking ties by predicted quality. Scores within
``metrics.TIE_TOLERANCE`` of the best count as tied, and a tie goes to the cheaper call: routers that average
labels (knn) give equal qualities that float rounding leaves a few ulps apart, and without the tolerance that
noise, not the router, would pick among them. Each decision is then scored with the labels: mean realised quality and mean realised
cost (USD per prompt) over the evaluated prompts.

The λ grid is log-spaced around the scale of the data: ``1 / spread`` where ``spread`` is the median over
prompts of (most expensive − cheapest expected call), from 10⁻³ to 10³ times that, plus 0 and ∞. A router
therefore walks from "best predicted quality, whatever it costs" to "cheapest call" whatever its units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pointsman.evaluation.metrics import TIE_TOLERANCE  # here absolute, on the quality scale (0..1)

__all__ = ["Sweep", "default_lambdas", "route", "sweep"]


def default_lambdas(expected_cost: np.ndarray, n: int = 60) -> np.ndarray:
    """0, ``n`` log-spaced weights around the data's cost scale, and ∞ (USD⁻¹ on a 0..1 quality scale)."""
    assert expected_cost.ndim == 2, "expected_cost must be (N, M)"
    spread = expected_cost.max(axis=1) - expected_cost.min(axis=1)
    positive = spread[spread > 0]
    scale = float(np.median(positive)) if positive.size else max(float(expected_cost.mean()), 1e-12)
    return np.concatenate(([0.0], np.logspace(-3, 3, n) / scale, [np.inf]))


def route(predicted: np.ndarray, expected_cost: np.ndarray, lam: float) -> np.ndarray:
    """(N,) index of the chosen model per prompt at cost weight ``lam``."""
    assert predicted.shape == expected_cost.shape, "predicted quality and expected cost must both be (N, M)"
    if np.isinf(lam):
        cheapest = expected_cost <= expected_cost.min(axis=1, keepdims=True)
        return np.where(cheapest, predicted, -np.inf).argmax(axis=1)
    score = predicted - lam * expected_cost
    tied = score >= score.max(axis=1, keepdims=True) - TIE_TOLERANCE
    return np.where(tied, expected_cost, np.inf).argmin(axis=1)


@dataclass(frozen=True)
class Sweep:
    """One router's operating points. ``choices[l, i]`` is the model index prompt ``i`` went to at ``lambdas[l]``."""

    lambdas: np.ndarray  # (L,)
    choices: np.ndarray  # (L, N) int
    quality: np.ndarray  # (L,) mean realised quality
    cost: np.ndarray  # (L,) mean realised cost, USD per prompt

    def chosen(self, values: np.ndarray) -> np.ndarray:
        """(L, N) the per-prompt value (quality or cost, (N, M)) of each decision."""
        n = values.shape[0]
        return values[np.arange(n)[None, :], self.choices]


def sweep(
    predicted: np.ndarray,
    expected_cost: np.ndarray,
    quality: np.ndarray,
    cost: np.ndarray,
    lambdas: np.ndarray,
) -> Sweep:
    """Route at every λ; score the decisions with the labels ``quality`` and realised ``cost`` (all (N, M))."""
    assert predicted.shape == expected_cost.shape == quality.shape == cost.shape, "all inputs must be (N, M)"
    choices = np.stack([route(predicted, expected_cost, float(lam)) for lam in lambdas])  # (L, N)
    rows = np.arange(predicted.shape[0])[None, :]
    return Sweep(
        lambdas=np.asarray(lambdas, dtype=float),
        choices=choices,
        quality=quality[rows, choices].mean(axis=1),
        cost=cost[rows, choices].mean(axis=1),
    )
