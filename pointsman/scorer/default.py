"""The scorer Pointsman uses when none is named: for now the "prior" (each model's mean quality in the public
data). When the neural scorer's checkpoint ships, this is the one place that switches to it."""

from __future__ import annotations

from pointsman.scorer.base import Scorer

__all__ = ["DEFAULT_SCORER_NAME", "default_scorer"]

DEFAULT_SCORER_NAME = "prior"


def default_scorer() -> Scorer:
    """The shipped default scorer, ready to predict (no training, no network)."""
    from pointsman.scorer.prior import PriorScorer

    return PriorScorer()
