"""Router metrics from RouterBench and RouteLLM, as pure functions on numpy arrays.

Quality–cost plane (RouterBench):

- ``upper_hull``: the non-decreasing concave hull of a router's (cost, quality) points. Any point on it is
  reachable by randomly mixing two of the router's operating points, so it is what the router can deliver.
- ``aiq``: the area under that hull over a shared cost range ``[c_min, c_max]``, divided by the range::

      AIQ = 1 / (c_max - c_min) * integral_{c_min}^{c_max} H(c) dc

  ``H`` is the hull, extended flat to the right of its most expensive point and taken as 0 to the left of
  its cheapest point (a router cannot deliver any quality below the cheapest cost it reaches). The harness
  uses the cheapest and the most expensive single model's mean cost per prompt as ``c_min`` and ``c_max``,
  the same for every router on a dataset, so AIQs on one dataset are comparable; AIQ is on the label scale.
- ``quality_at_cost`` and ``cost_to_match`` read the hull at a cost or a quality.

Strong/weak pair (RouteLLM):

- ``pgr_curve``: the router sends the prompts with the largest predicted margin (strong minus weak) to the
  strong model. For every share of strong calls it reaches, the performance gap recovered is
  ``PGR = (q_router - q_weak) / (q_strong - q_weak)`` with the qualities averaged over all prompts. Prompts
  with tied margins cannot be split by a threshold, so the curve goes straight across a tie group (the
  expected value of breaking the tie at random). Margins within ``TIE_TOLERANCE`` (relative to the largest
  margin, at least absolute) of each other count as tied: a router that averages labels (knn) gives equal
  margins that float rounding leaves a few ulps apart, and splitting those by rounding noise moved knn's
  RouterBench APGR over 0.443-0.484 under 1e-12 perturbations.
- ``apgr``: the area under PGR against the share of strong calls, on [0, 1]. A router that routes at random
  has an expected APGR of exactly 0.5; the oracle's is the largest possible.
- ``cpt``: the smallest share of strong calls at which the PGR curve reaches a target (RouteLLM's CPT(50%),
  CPT(80%)), reading the curve linearly between its points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "TIE_TOLERANCE",
    "Hull",
    "PGRCurve",
    "aiq",
    "apgr",
    "cost_to_match",
    "cpt",
    "pgr_curve",
    "quality_at_cost",
    "upper_hull",
]


@dataclass(frozen=True)
class Hull:
    """Vertices of a non-decreasing concave hull, sorted by cost (both arrays strictly increasing)."""

    cost: np.ndarray  # (K,)
    quality: np.ndarray  # (K,)

    def value(self, c: float) -> float | None:
        """H(c): the hull's quality at cost ``c``; None below its cheapest point."""
        if c < self.cost[0]:
            return None
        return float(np.interp(c, self.cost, self.quality))


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def upper_hull(costs: np.ndarray, qualities: np.ndarray) -> Hull:
    """The non-decreasing concave upper hull of (cost, quality) points.

    Dominated points (costlier and no better than another) are dropped first; the upper hull of what is left
    (Andrew's monotone chain) is then non-decreasing and ends at the best quality's cheapest point.
    """
    c = np.asarray(costs, dtype=float).ravel()
    q = np.asarray(qualities, dtype=float).ravel()
    assert c.shape == q.shape and c.size > 0, "need at least one (cost, quality) point of matching shapes"
    assert np.all(np.isfinite(c)) and np.all(np.isfinite(q)), "costs and qualities must be finite"
    order = np.lexsort((-q, c))  # by cost, then best quality first
    frontier: list[tuple[float, float]] = []
    for i in order:
        point = (float(c[i]), float(q[i]))
        if frontier and point[1] <= frontier[-1][1]:
            continue  # dominated: no better than something at most as cheap
        frontier.append(point)
    hull: list[tuple[float, float]] = []
    for point in frontier:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) >= 0:
            hull.pop()  # hull[-1] lies on or below the chord: mixing its neighbours does at least as well
        hull.append(point)
    return Hull(cost=np.array([p[0] for p in hull]), quality=np.array([p[1] for p in hull]))


def aiq(hull: Hull, c_min: float, c_max: float) -> float:
    """Average quality over the cost range: the area under ``hull`` on [c_min, c_max] over the range's width.

    The hull counts as 0 below its cheapest point and flat above its most expensive one. With an empty range
    (``c_min == c_max``) it is the hull's value at that cost (0 if the hull starts above it).
    """
    assert c_max >= c_min, f"empty cost range [{c_min}, {c_max}]"
    if c_max == c_min:
        value = hull.value(c_min)
        return 0.0 if value is None else value
    start = max(c_min, float(hull.cost[0]))
    if start >= c_max:
        return 0.0
    inner = hull.cost[(hull.cost > start) & (hull.cost < c_max)]
    xs = np.concatenate(([start], inner, [c_max]))
    ys = np.interp(xs, hull.cost, hull.quality)
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
    return area / (c_max - c_min)


def quality_at_cost(hull: Hull, cost: float) -> float | None:
    """The quality the router delivers at ``cost`` (mixing its operating points); None if it cannot be that cheap."""
    return hull.value(cost)


def cost_to_match(hull: Hull, quality: float) -> float | None:
    """The smallest cost at which the hull reaches ``quality``; None if it never does."""
    if hull.quality[-1] < quality:
        return None
    if hull.quality[0] >= quality:
        return float(hull.cost[0])
    j = int(np.argmax(hull.quality >= quality))  # first vertex at or above; j >= 1
    c0, c1 = hull.cost[j - 1], hull.cost[j]
    q0, q1 = hull.quality[j - 1], hull.quality[j]
    return float(c0 + (quality - q0) / (q1 - q0) * (c1 - c0))


@dataclass(frozen=True)
class PGRCurve:
    """PGR at each reachable share of strong calls; ``strong_share`` runs from 0 to 1, ``pgr`` from 0 to 1."""

    strong_share: np.ndarray  # (K,)
    pgr: np.ndarray  # (K,)


TIE_TOLERANCE = 1e-9  # values this close are one tie: relative here, absolute in ``curves.route``


def pgr_curve(margin: np.ndarray, q_strong: np.ndarray, q_weak: np.ndarray) -> PGRCurve | None:
    """The PGR curve of a router whose preference for the strong model on each prompt is ``margin``.

    ``q_strong``/``q_weak`` are the labelled qualities of the two models on each prompt. Returns None when the
    two models have the same mean quality (no gap to recover).
    """
    margin = np.asarray(margin, dtype=float).ravel()
    qs = np.asarray(q_strong, dtype=float).ravel()
    qw = np.asarray(q_weak, dtype=float).ravel()
    n = margin.size
    assert n > 0 and qs.size == n and qw.size == n, "margin, q_strong and q_weak need one value per prompt"
    gap = float(qs.mean() - qw.mean())
    if abs(gap) < 1e-12:
        return None
    order = np.argsort(-margin, kind="stable")
    sorted_margin = margin[order]
    gains = np.cumsum((qs - qw)[order])  # (n,) quality gained by sending the top-k to the strong model
    # A threshold can only stop at the end of a group of equal margins (equal up to rounding noise).
    tol = TIE_TOLERANCE * max(1.0, float(np.abs(margin).max()))
    apart = sorted_margin[:-1] - sorted_margin[1:] > tol  # sorted descending, so each step is >= 0
    ends = np.flatnonzero(np.append(apart, True))  # last index per group
    share = np.concatenate(([0.0], (ends + 1) / n))
    gained = np.concatenate(([0.0], gains[ends])) / n
    return PGRCurve(strong_share=share, pgr=gained / gap)


def apgr(curve: PGRCurve) -> float:
    """Area under the PGR curve over the share of strong calls (0..1)."""
    x, y = curve.strong_share, curve.pgr
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))


def cpt(curve: PGRCurve, target: float) -> float:
    """The smallest share of strong calls (0..1) at which PGR reaches ``target`` (e.g. 0.5 for CPT(50%))."""
    x, y = curve.strong_share, curve.pgr
    if y[0] >= target:
        return float(x[0])
    for i in range(len(x) - 1):
        if y[i] < target <= y[i + 1]:
            return float(x[i] + (target - y[i]) / (y[i + 1] - y[i]) * (x[i + 1] - x[i]))
    # PGR is exactly 1 at 100% strong calls, so any target up to 1 is reached above.
    assert target > y[-1], "unreachable"
    return float("nan")
