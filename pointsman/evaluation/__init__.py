"""Evaluating routers: quality–cost curves, AIQ, APGR, CPT, the oracle; reports and plots.

The entry points are ``evaluate_files`` / ``evaluate_dataset`` (``pointsman.evaluation.harness``) and
``write_report`` (``pointsman.evaluation.report``); the metrics are pure functions in
``pointsman.evaluation.metrics``.
"""

from __future__ import annotations

from pointsman.evaluation.costs import catalogue_prices, load_prices
from pointsman.evaluation.harness import (
    DatasetResult,
    EvalOptions,
    RouterResult,
    evaluate_dataset,
    evaluate_files,
    train_scorer,
)
from pointsman.evaluation.report import write_report

__all__ = [
    "DatasetResult",
    "EvalOptions",
    "RouterResult",
    "catalogue_prices",
    "evaluate_dataset",
    "evaluate_files",
    "load_prices",
    "train_scorer",
    "write_report",
]
