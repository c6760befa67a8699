"""Baseline routers behind the scorer interface: ``random``, ``best-single``, ``knn``, ``mf``.

Importing this package registers them in ``pointsman.scorer.base.SCORERS`` (``load_registry`` does it), so
the evaluation harness trains and compares them exactly like the neural scorer.
"""

from __future__ import annotations

from pointsman.baselines.best_single import BestSingleScorer
from pointsman.baselines.knn import KNNScorer
from pointsman.baselines.mf import MFScorer
from pointsman.baselines.random import RandomScorer

__all__ = ["BestSingleScorer", "KNNScorer", "MFScorer", "RandomScorer"]
