"""Calibrate on your own traffic, without labels: the cost weight that sends at most X% of calls to the
strongest model.

RouteLLM users ask for "at most 30% of calls to GPT-4"; Pointsman's knob is the cost weight ``c`` of the router
string. Given a sample of the user's prompts (no answers, no grades), this module scores each prompt once,
then replays the real ranking (``pointsman.router.Router`` with the user's router string, its thresholds,
latency terms and search space) for candidate values of ``c`` and bisects (in log space) for the smallest
``c`` at which the strongest model's share of the sample is at most X. The smallest such ``c`` keeps as much
quality as the budget allows. "Strongest" is the model with the highest mean predicted quality on the sample
(or the one named).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pointsman.errors import DataError, NoCandidatesError
from pointsman.router import Router
from pointsman.router_string import RouterSpec, RouterStep, Weights, parse_router_string
from pointsman.scorer.base import Prediction, Scorer

__all__ = ["Calibration", "calibrate_cost_weight", "with_cost_weight"]

_LOG_LO, _LOG_HI = -10.0, 4.0  # c from 1e-10 to 1e4 (quality 0..1 against USD per 1M tokens)


@dataclass
class Calibration:
    router: str  # the calibrated router string
    cost_weight: float
    strong_model: str
    strong_share: float  # on the sample, at ``cost_weight``
    target_share: float
    shares: dict[str, float]  # every model's share of the sample at ``cost_weight``
    prompts: int
    curve: list[tuple[float, float]] = field(default_factory=list)  # (c, strong share) tried


class _Cached(Scorer):
    """A scorer whose predictions for a fixed prompt sample were computed once, in one batch."""

    name = "cached"

    def __init__(self, inner: Scorer, prompts: Sequence[str], models: Sequence[str]) -> None:
        self.inner = inner
        self._models = list(models)
        pred = inner.predict(list(prompts), self._models)
        self._row = {p: i for i, p in enumerate(prompts)}
        self._quality = np.asarray(pred.quality, dtype=float)
        self._unc = None if pred.uncertainty is None else np.asarray(pred.uncertainty, dtype=float)

    @property
    def models(self) -> list[str]:
        return list(self._models)

    def mean_quality(self) -> dict[str, float]:
        return {m: float(self._quality[:, j].mean()) for j, m in enumerate(self._models)}

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        rows = [self._row[p] for p in prompts]
        cols = [self._models.index(m) for m in models]
        q = self._quality[np.ix_(rows, cols)]
        u = None if self._unc is None else self._unc[np.ix_(rows, cols)]
        return Prediction(list(models), q, u)


def with_cost_weight(spec: RouterSpec, c: float) -> RouterSpec:
    """``spec`` with its first link's cost weight set to ``c`` (other weights kept; q defaults to 1)."""
    step = spec.primary
    assert isinstance(step, RouterStep)
    weights = step.weights or Weights(quality=1.0)
    new_step = step.model_copy(update={"weights": weights.model_copy(update={"cost": c}), "meta": None})
    return RouterSpec(chain=(new_step, *spec.chain[1:]))


def calibrate_cost_weight(
    prompts: Sequence[str],
    router: str,
    *,
    max_strong_share: float,
    engine: Router,
    strong: str | None = None,
    iterations: int = 40,
    on_step: Callable[[], None] | None = None,
) -> Calibration:
    """Fit ``c`` in ``router`` (a ``router@...`` string, possibly naming a custom router) on ``prompts``.
    ``on_step`` is called after each replay of the sample (at most ``iterations + 3``)."""
    if not 0.0 <= max_strong_share <= 1.0:
        raise DataError(
            f"the strongest model's share must be within 0..1, got {max_strong_share}", field="share"
        )
    texts = list(dict.fromkeys(p for p in prompts if p.strip()))
    if not texts:
        raise DataError("no prompts to calibrate on; give a file of your own prompts")
    spec = parse_router_string(router)
    step = spec.primary
    if not isinstance(step, RouterStep) or step.meta is not None:
        raise DataError(
            f"calibration tunes the cost weight of a 'router@...' link with weights, got {router!r}; "
            "e.g. 'router@q:1' or 'router@NAME|q:1|t:2e-05'",
            field="router",
        )
    scorer = engine._scorer_for(step.name)
    endpoints = engine._link_endpoints(step, step)
    models = sorted({e.model for e in endpoints} & set(scorer.models))
    if len(models) < 2:
        raise NoCandidatesError(
            f"the router {router!r} can score {len(models)} candidate model(s) ({', '.join(models) or 'none'}); "
            "calibration needs at least two",
            param="router",
        )
    cached = _Cached(scorer, texts, models)
    means = cached.mean_quality()
    if strong is None:
        strong = max(means, key=lambda m: means[m])
    elif strong not in means:
        from pointsman.errors import UnknownNameError

        raise UnknownNameError("model (not a candidate of this router)", strong, means, param="strong")
    local = Router(
        catalog=engine.catalog,
        scorer=cached,
        latency=engine.latency,
        default_router=engine.default_spec,
    )
    base = spec.model_copy(
        update={"chain": (step.model_copy(update={"name": None}), *spec.chain[1:])}
    )  # the cached scorer stands in for the named one

    curve: list[tuple[float, float]] = []

    def shares(c: float) -> Counter[str]:
        s = with_cost_weight(base, c)
        counts: Counter[str] = Counter()
        for t in texts:
            counts[local.rank(t, s, max_attempts=1).chosen.model] += 1
        curve.append((c, counts[strong] / len(texts)))
        if on_step is not None:
            on_step()
        return counts

    lo, hi = _LOG_LO, _LOG_HI
    counts = shares(10**lo)
    best_c, best_counts = 10**lo, counts
    if counts[strong] / len(texts) > max_strong_share:
        counts = shares(10**hi)
        if counts[strong] / len(texts) > max_strong_share:
            raise DataError(
                f"even with cost weight {10**hi:g}, {counts[strong] / len(texts):.0%} of the prompts go to "
                f"{strong} (it is also the cheapest, or the search space leaves little else); widen the search "
                "space or lower the quality weight",
                field="share",
            )
        best_c, best_counts = 10**hi, counts
        for _ in range(iterations):
            mid = (lo + hi) / 2
            counts = shares(10**mid)
            if counts[strong] / len(texts) <= max_strong_share:
                hi, best_c, best_counts = mid, 10**mid, counts
            else:
                lo = mid
            if hi - lo < 1e-3:
                break
    c = _round_up(best_c)
    if c != best_c:
        rounded = shares(c)  # a rounder c for the router string, when it keeps within the limit
        if rounded[strong] / len(texts) <= max_strong_share:
            best_counts = rounded
        else:
            c = best_c
    final = with_cost_weight(spec, c)
    return Calibration(
        router=final.to_string(),
        cost_weight=c,
        strong_model=strong,
        strong_share=best_counts[strong] / len(texts),
        target_share=max_strong_share,
        shares={m: best_counts[m] / len(texts) for m in models},
        prompts=len(texts),
        curve=sorted(curve),
    )


def _round_up(c: float) -> float:
    """Three significant digits, rounded up so the share limit still holds."""
    if c <= 0:
        return c
    exp = math.floor(math.log10(c)) - 2
    return math.ceil(c / 10**exp) * 10**exp
