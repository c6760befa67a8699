"""Writing an evaluation out: ``report.json`` (every number), ``report.md`` (tables) and PNG plots.

Everything is written into a temporary directory beside ``--out`` and renamed into place at the end, so a
failure leaves nothing half-written: ``--out`` either holds a complete report or is untouched.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pointsman.errors import DataError
from pointsman.evaluation.harness import DatasetResult, RouterResult

__all__ = ["check_out_dir", "dataset_to_dict", "render_markdown", "write_report"]

AIQ_DEFINITION = (
    "AIQ = area under the router's non-decreasing convex hull in the (cost, quality) plane over "
    "[c_min, c_max] divided by (c_max - c_min), where c_min/c_max are the cheapest/most expensive single "
    "model's mean cost per prompt on the evaluated prompts; the hull counts as 0 below the router's cheapest "
    "point and stays flat above its most expensive one."
)


def _num(x: float | None) -> float | None:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return None
    return float(x)


def _router_to_dict(r: RouterResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": r.name,
        "kind": r.kind,
        "aiq": r.aiq,
        "aiq_ci95": list(r.aiq_ci) if r.aiq_ci else None,
        "aiq_minus_singles_hull": _num(r.aiq_gain),
        "aiq_minus_singles_hull_ci95": list(r.aiq_gain_ci) if r.aiq_gain_ci else None,
        "quality_at_best_single_cost": _num(r.quality_at_best_single_cost),
        "cost_to_match_best_single_usd": _num(r.cost_to_match_best_single),
        "apgr": _num(r.apgr),
        "apgr_ci95": list(r.apgr_ci) if r.apgr_ci else None,
        "cpt50": _num(r.cpt50),
        "cpt80": _num(r.cpt80),
        "fit_seconds": r.fit_seconds,
        "predict_seconds": r.predict_seconds,
        "points": [
            {
                "lambda": None if r.lambdas is None or np.isinf(lam) else float(lam),
                "cost_usd": float(c),
                "quality": float(q),
            }
            for lam, c, q in zip(
                r.lambdas if r.lambdas is not None else [None] * len(r.points_cost),
                r.points_cost,
                r.points_quality,
                strict=True,
            )
        ],
        "hull": [
            {"cost_usd": float(c), "quality": float(q)}
            for c, q in zip(r.hull.cost, r.hull.quality, strict=True)
        ],
    }
    if r.pgr is not None:
        out["pgr_curve"] = {
            "strong_share": [float(x) for x in r.pgr.strong_share],
            "pgr": [float(y) for y in r.pgr.pgr],
        }
    return out


def dataset_to_dict(d: DatasetResult) -> dict[str, Any]:
    """Every number of one dataset's evaluation, JSON-ready."""
    return {
        "dataset": d.name,
        "path": d.path,
        "source": d.source,
        "label": d.label,
        "n_prompts": d.n_prompts,
        "n_incomplete_skipped": d.n_incomplete,
        "split": {"kind": d.split.kind, "description": d.split.description, "folds": len(d.split.folds)},
        "candidates": d.candidates,
        "pair": {"strong": d.pair[0], "weak": d.pair[1], "why": d.pair_note} if d.pair else None,
        "cost_range_usd": {"c_min": d.c_min, "c_max": d.c_max},
        "best_single": {
            "model": d.best_single,
            "quality": d.singles_quality[d.best_single],
            "cost_usd": d.singles_cost[d.best_single],
        },
        "singles": [
            {"model": m, "quality": d.singles_quality[m], "cost_usd": d.singles_cost[m]} for m in d.candidates
        ],
        "routers": {name: _router_to_dict(r) for name, r in d.routers.items()},
        "references": {name: _router_to_dict(r) for name, r in d.references.items()},
        "bootstrap_resamples": d.bootstrap,
        "notes": d.notes,
    }


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _ci(value: float | None, ci: tuple[float, float] | None) -> str:
    if value is None:
        return "–"
    if ci is None:
        return _f(value)
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def _signed(value: float, ci: tuple[float, float] | None) -> str:
    text = f"{value:+.3f}"
    if ci is not None:
        text += f" [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return text


def _pct(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.1f}%"


def _usd_k(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"${1000 * x:.4g}"


def _row(d: DatasetResult, label: str, r: RouterResult) -> str:
    match = r.cost_to_match_best_single
    best_cost = d.singles_cost[d.best_single]
    match_text = (
        "never" if match is None else f"{_usd_k(match)} ({_pct(match / best_cost) if best_cost else '–'})"
    )
    gain = "–" if r.aiq_gain is None else _signed(r.aiq_gain, r.aiq_gain_ci)
    return (
        f"| {label} | {_ci(r.aiq, r.aiq_ci)} | {gain} | {_ci(r.apgr, r.apgr_ci)} | {_pct(r.cpt50)} | {_pct(r.cpt80)} | "
        f"{_f(r.quality_at_best_single_cost)} | {match_text} |"
    )


def render_markdown(results: Sequence[DatasetResult], meta: dict[str, Any]) -> str:
    """``report.md``: per dataset, a table of routers and references, then the single models."""
    lines = ["# Router evaluation", ""]
    lines.append(f"Command: `{meta.get('command', '')}`  ")
    lines.append(f"Prices: {meta.get('prices', '')}  ")
    lines.append(f"Bootstrap: {meta.get('bootstrap', '')} resamples of prompts, 95% percentile intervals.  ")
    lines.append(AIQ_DEFINITION + "  ")
    lines.append(
        "APGR/CPT follow RouteLLM on the strong/weak pair: the router sends the prompts with the largest "
        "predicted margin to the strong model; PGR = (quality − weak) / (strong − weak); APGR is the area "
        "under PGR vs the share of strong calls; CPT(x%) is the share of strong calls needed to reach PGR x. "
        "'AIQ − mixing singles' is the router's AIQ minus that of the convex hull of single models, with a "
        "paired bootstrap interval: an interval above 0 is a gain that is not noise."
    )
    lines.append("")
    for d in results:
        lines.append(f"## {d.name}")
        lines.append("")
        lines.append(f"- file: `{d.path}`; source `{d.source}`; label: {d.label or '(not given)'}")
        lines.append(f"- evaluated prompts: {d.n_prompts}; split: {d.split.description}")
        pair = f"{d.pair[0]} (strong) vs {d.pair[1]} (weak), {d.pair_note}" if d.pair else "none"
        lines.append(f"- strong/weak pair: {pair}")
        best = d.best_single
        lines.append(
            f"- best single model: {best} (quality {d.singles_quality[best]:.3f}, "
            f"{_usd_k(d.singles_cost[best])} per 1,000 prompts); cost range {_usd_k(d.c_min)}–{_usd_k(d.c_max)} per 1,000 prompts"
        )
        for note in d.notes:
            lines.append(f"- note: {note}")
        lines.append("")
        lines.append(
            "| router | AIQ [95% CI] | AIQ − mixing singles [95% CI] | APGR [95% CI] | CPT(50%) | CPT(80%) | "
            "quality @ best-single cost | cost to match best single (per 1,000 prompts) |"
        )
        lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, r in d.routers.items():
            lines.append(_row(d, name, r))
        lines.append(_row(d, "*oracle*", d.references["oracle"]))
        lines.append(_row(d, "*mixing single models (hull)*", d.references["singles-hull"]))
        lines.append("")
        lines.append("| single model | quality | cost per 1,000 prompts |")
        lines.append("| --- | --- | --- |")
        for m in sorted(d.candidates, key=lambda m: -d.singles_quality[m]):
            lines.append(f"| {m} | {d.singles_quality[m]:.3f} | {_usd_k(d.singles_cost[m])} |")
        lines.append("")
        lines.append(f"![quality vs cost]({d.name}-quality-cost.png)")
        if d.pair and d.references["oracle"].pgr is not None:
            lines.append(f"![PGR curve]({d.name}-pgr.png)")
        lines.append("")
    return "\n".join(lines)


def check_out_dir(out: str | Path) -> Path:
    """``--out`` must be new or an empty directory; said before any work is done."""
    p = Path(out)
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise DataError(
            "exists and is not an empty directory; give a new --out directory or remove this one",
            path=str(p),
        )
    return p


def write_report(
    results: Sequence[DatasetResult], out: str | Path, meta: dict[str, Any], *, plots: bool = True
) -> list[Path]:
    """Write report.json, report.md and the plots into ``out`` atomically; returns the files written."""
    from pointsman.evaluation.plots import plot_pgr, plot_quality_cost

    target = check_out_dir(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        report = {**meta, "aiq_definition": AIQ_DEFINITION, "datasets": [dataset_to_dict(d) for d in results]}
        (tmp / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        (tmp / "report.md").write_text(render_markdown(results, meta) + "\n", encoding="utf-8")
        if plots:
            for d in results:
                plot_quality_cost(d, tmp / f"{d.name}-quality-cost.png")
                plot_pgr(d, tmp / f"{d.name}-pgr.png")
        tmp.chmod(0o755)  # mkdtemp makes it private; a report directory is not a secret
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(target.iterdir())
