"""AIQ, hull, PGR, APGR and CPT against small cases worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from pointsman.evaluation.curves import default_lambdas, route, sweep
from pointsman.evaluation.metrics import (
    aiq,
    apgr,
    cost_to_match,
    cpt,
    pgr_curve,
    quality_at_cost,
    upper_hull,
)


def hull_of(points: list[tuple[float, float]]):  # type: ignore[no-untyped-def]
    c, q = zip(*points, strict=True)
    return upper_hull(np.array(c), np.array(q))


def test_hull_drops_points_under_the_chord_dominated_and_decreasing_points() -> None:
    # (2, 0.6) lies under the chord (1, 0.5)–(3, 0.9) whose value at 2 is 0.7; (2.5, 0.4) is dominated;
    # (4, 0.8) is worse and dearer than (3, 0.9); (1, 0.3) loses the tie at cost 1 to (1, 0.5).
    h = hull_of([(2, 0.6), (1, 0.5), (3, 0.9), (2.5, 0.4), (4, 0.8), (1, 0.3)])
    assert h.cost.tolist() == [1, 3]
    assert h.quality.tolist() == [0.5, 0.9]


def test_hull_keeps_the_cheapest_of_equally_good_points_and_drops_collinear_ones() -> None:
    h = hull_of([(1, 0.5), (2, 0.7), (3, 0.9), (3.5, 0.9)])
    assert h.cost.tolist() == [1, 3]
    assert h.quality.tolist() == [0.5, 0.9]


def test_hull_keeps_concave_points() -> None:
    h = hull_of([(1, 0.5), (2, 0.8), (3, 0.9)])
    assert h.cost.tolist() == [1, 2, 3]


def test_aiq_by_hand() -> None:
    h = hull_of([(1, 0.5), (3, 0.9)])
    # On [1, 4]: trapezoid (0.5 + 0.9) / 2 * 2 = 1.4, then flat 0.9 * 1 = 0.9; 2.3 / 3.
    assert aiq(h, 1, 4) == pytest.approx(2.3 / 3)
    # On [0, 4]: nothing is delivered below cost 1, so 2.3 / 4.
    assert aiq(h, 0, 4) == pytest.approx(0.575)
    # On [2, 3]: (0.7 + 0.9) / 2.
    assert aiq(h, 2, 3) == pytest.approx(0.8)
    # A range entirely below the hull's cheapest point delivers nothing.
    assert aiq(h, 0, 0.5) == 0.0


def test_aiq_of_a_single_point_and_of_an_empty_range() -> None:
    h = hull_of([(2, 0.6)])
    assert aiq(h, 1, 3) == pytest.approx(0.6 / 2)  # 0 on [1, 2), 0.6 on [2, 3]
    assert aiq(h, 2, 2) == pytest.approx(0.6)
    assert aiq(h, 1, 1) == 0.0


def test_quality_at_cost_and_cost_to_match() -> None:
    h = hull_of([(1, 0.5), (3, 0.9)])
    assert quality_at_cost(h, 2) == pytest.approx(0.7)
    assert quality_at_cost(h, 5) == pytest.approx(0.9)
    assert quality_at_cost(h, 0.5) is None
    assert cost_to_match(h, 0.7) == pytest.approx(2.0)
    assert cost_to_match(h, 0.4) == pytest.approx(1.0)
    assert cost_to_match(h, 0.9) == pytest.approx(3.0)
    assert cost_to_match(h, 0.95) is None


def test_pgr_curve_apgr_and_cpt_by_hand() -> None:
    margin = np.array([3.0, 2.0, 1.0, 0.0])
    qs = np.array([1.0, 1.0, 0.0, 1.0])
    qw = np.array([0.0, 0.0, 0.0, 1.0])
    curve = pgr_curve(margin, qs, qw)
    assert curve is not None
    # gap = 0.75 - 0.25; gains in margin order 1, 1, 0, 0 → PGR 0, .5, 1, 1, 1
    assert curve.strong_share.tolist() == [0, 0.25, 0.5, 0.75, 1]
    assert curve.pgr.tolist() == pytest.approx([0, 0.5, 1, 1, 1])
    assert apgr(curve) == pytest.approx(0.0625 + 0.1875 + 0.25 + 0.25)
    assert cpt(curve, 0.5) == pytest.approx(0.25)
    assert cpt(curve, 0.8) == pytest.approx(0.25 + 0.3 / 0.5 * 0.25)
    assert cpt(curve, 0.0) == 0.0


def test_ties_are_crossed_in_a_straight_line() -> None:
    # Prompts 1 and 2 tie; breaking the tie either way gives APGR 0.625 or 0.75, the tie must give the mean.
    margin = np.array([2.0, 1.0, 1.0, 0.0])
    qs = np.array([1.0, 0.0, 1.0, 0.0])
    qw = np.zeros(4)
    curve = pgr_curve(margin, qs, qw)
    assert curve is not None
    assert curve.strong_share.tolist() == [0, 0.25, 0.75, 1]
    assert curve.pgr.tolist() == pytest.approx([0, 0.5, 1, 1])
    assert apgr(curve) == pytest.approx((0.625 + 0.75) / 2)
    assert cpt(curve, 0.8) == pytest.approx(0.25 + 0.3 / 0.5 * 0.5)


def test_margins_a_few_ulps_apart_are_one_tie_group() -> None:
    # The same tie as above, but the way an average of labels comes out of float sums in another order:
    # 1.0 and 1.0 + 2 ulps. Splitting them by that noise would give 0.625 or 0.75 depending on its sign.
    qs = np.array([1.0, 0.0, 1.0, 0.0])
    qw = np.zeros(4)
    for noisy in (np.nextafter(np.nextafter(1.0, 2.0), 2.0), np.nextafter(np.nextafter(1.0, 0.0), 0.0)):
        curve = pgr_curve(np.array([2.0, noisy, 1.0, 0.0]), qs, qw)
        assert curve is not None
        assert curve.strong_share.tolist() == [0, 0.25, 0.75, 1]
        assert apgr(curve) == pytest.approx((0.625 + 0.75) / 2)
    # Margins that really differ (by more than the tolerance, relative to the largest) are still split.
    curve = pgr_curve(np.array([2.0, 1.0 + 1e-6, 1.0, 0.0]), qs, qw)
    assert curve is not None and curve.strong_share.tolist() == [0, 0.25, 0.5, 0.75, 1]
    big = pgr_curve(np.array([2e6, 1e6 + 1e-4, 1e6, 0.0]), qs, qw)  # 1e-10 apart relative to 2e6: tied
    assert big is not None and big.strong_share.tolist() == [0, 0.25, 0.75, 1]


def test_a_router_that_cannot_tell_prompts_apart_has_apgr_exactly_half() -> None:
    rng = np.random.default_rng(0)
    qs, qw = rng.random(50), rng.random(50) * 0.5
    curve = pgr_curve(np.zeros(50), qs, qw)
    assert curve is not None
    assert apgr(curve) == pytest.approx(0.5)
    assert cpt(curve, 0.5) == pytest.approx(0.5)
    assert cpt(curve, 0.8) == pytest.approx(0.8)


def test_a_random_router_has_apgr_near_half_and_the_oracle_more() -> None:
    rng = np.random.default_rng(1)
    values = []
    oracle_values = []
    for _ in range(200):
        qs = (rng.random(200) < 0.7).astype(float)
        qw = (rng.random(200) < 0.4).astype(float)
        curve = pgr_curve(rng.random(200), qs, qw)
        oracle = pgr_curve(qs - qw, qs, qw)
        assert curve is not None and oracle is not None
        values.append(apgr(curve))
        oracle_values.append(apgr(oracle))
    assert np.mean(values) == pytest.approx(0.5, abs=0.01)
    assert min(oracle_values) > max(values)


def test_pgr_is_undefined_without_a_gap() -> None:
    assert pgr_curve(np.array([1.0, 0.0]), np.array([1.0, 0.0]), np.array([0.0, 1.0])) is None


def test_sweep_goes_from_best_predicted_to_cheapest() -> None:
    predicted = np.array([[0.9, 0.5, 0.1], [0.2, 0.8, 0.7]])
    expected = np.array([[3.0, 1.0, 0.5], [3.0, 1.0, 1.0]])
    assert route(predicted, expected, 0.0).tolist() == [0, 1]
    # λ = ∞ takes the cheapest call; on prompt 1 models 1 and 2 tie on cost and the better prediction wins.
    assert route(predicted, expected, np.inf).tolist() == [2, 1]
    quality = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5]])
    lambdas = default_lambdas(expected, 10)
    assert lambdas[0] == 0 and np.isinf(lambdas[-1]) and np.all(np.diff(lambdas) > 0)
    sw = sweep(predicted, expected, quality, expected, lambdas)
    assert sw.quality[0] == pytest.approx(1.0) and sw.cost[0] == pytest.approx(2.0)
    assert sw.quality[-1] == pytest.approx(0.5) and sw.cost[-1] == pytest.approx(0.75)
    assert sw.chosen(quality).shape == (len(lambdas), 2)


def test_scores_a_few_ulps_apart_tie_and_the_tie_goes_to_the_cheaper_call() -> None:
    # Models 0 and 2 predict the same quality, one of them 2 ulps higher (float sums in another order):
    # the noise must not pick the expensive one. A real difference (1e-6) still wins.
    noisy = np.nextafter(np.nextafter(0.7, 1.0), 1.0)
    expected = np.array([[3.0, 1.0, 0.5], [3.0, 1.0, 0.5]])
    predicted = np.array([[noisy, 0.2, 0.7], [0.7 + 1e-6, 0.2, 0.7]])
    assert route(predicted, expected, 0.0).tolist() == [2, 0]
    equal_cost = np.array([[1.0, 1.0, 1.0]])  # an exact tie on cost too keeps the first model
    assert route(np.array([[0.7, 0.7, 0.1]]), equal_cost, 0.0).tolist() == [0]
