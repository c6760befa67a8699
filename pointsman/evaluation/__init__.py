"""Evaluating routers: quality–cost curves, AIQ, APGR, CPT, the oracle; reports and plots.

The entry points are ``evaluate_files`` / ``evaluate_dataset`` (``pointsman.evaluation.harness``) and
``write_report`` (``pointsman.evaluation.report``); the metrics are pure functions in
``pointsman.evaluation.metrics``.
"""

from __future__ import annotations

from pointsman.evaluation.harness import (
    DatasetResult,
    EvalOptions,
    RouterResult,
    evaluate_dataset,
    evaluate_files,
    train_scorer,
)

__all__ = [
    "DatasetResult",
    "EvalOptions",
    "RouterResult",
    "evaluate_dataset",
    "evaluate_files",
    "train_scorer",
]
