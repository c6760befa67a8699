"""PNG plots of an evaluation: the quality–cost plane and the PGR curve, readable without the report.

Costs are drawn as USD per 1,000 prompts on a log axis (single models span two orders of magnitude); a hull's
straight segments (random mixing in linear cost) are drawn densely so they stay true on that axis.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pointsman.evaluation.metrics import Hull

if TYPE_CHECKING:
    from pointsman.evaluation.harness import DatasetResult

__all__ = ["DPI", "FIGSIZE", "plot_pgr", "plot_quality_cost"]

FIGSIZE = (9.0, 6.0)  # inches
DPI = 110  # → 990 × 660 pixels
_PER_K = 1000.0  # cost axis unit: USD per 1,000 prompts


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _hull_xy(hull: Hull, right: float) -> tuple[np.ndarray, np.ndarray]:
    """Dense points along the hull (linear in cost), extended flat to ``right``."""
    xs: list[float] = []
    for a, b in zip(hull.cost[:-1], hull.cost[1:], strict=True):
        xs.extend(np.linspace(a, b, 40)[:-1])
    xs.append(float(hull.cost[-1]))
    if right > hull.cost[-1]:
        xs.append(right)
    x = np.asarray(xs)
    return x * _PER_K, np.interp(x, hull.cost, hull.quality)


def plot_quality_cost(result: DatasetResult, path: str | Path) -> Path:
    """Every router's hull and operating points, the oracle, the hull of single models and each single model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    right = max(result.c_max, *(float(r.points_cost.max()) for r in result.routers.values()))
    colours = plt.get_cmap("tab10")
    for k, (name, r) in enumerate(result.routers.items()):
        colour = colours(k % 10)
        x, y = _hull_xy(r.hull, right)
        ax.plot(x, y, color=colour, linewidth=2, label=f"{name} (AIQ {r.aiq:.3f})")
        ax.scatter(r.points_cost * _PER_K, r.points_quality, color=colour, s=10, alpha=0.5)
    oracle = result.references["oracle"]
    x, y = _hull_xy(oracle.hull, right)
    ax.plot(x, y, color="black", linestyle="--", linewidth=1.5, label=f"oracle (AIQ {oracle.aiq:.3f})")
    singles = result.references["singles-hull"]
    x, y = _hull_xy(singles.hull, right)
    ax.plot(
        x, y, color="grey", linestyle=":", linewidth=2, label=f"mixing single models (AIQ {singles.aiq:.3f})"
    )
    for model in result.candidates:
        c, q = result.singles_cost[model] * _PER_K, result.singles_quality[model]
        ax.scatter([c], [q], marker="D", color="black", s=28, zorder=5)
        ax.annotate(model, (c, q), textcoords="offset points", xytext=(5, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("cost (USD per 1,000 prompts, log scale)")
    ax.set_ylabel(f"mean quality ({result.label or 'label scale of ' + result.source})"[:90])
    ax.set_title(
        f"{result.name}: quality vs cost, {result.n_prompts} test prompts ({result.split.kind})\n"
        "lines: each router's hull (dots: its operating points); diamonds: single models",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    # Outside the axes: inside, it would hide single models.
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0.0)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_pgr(result: DatasetResult, path: str | Path) -> Path | None:
    """PGR against the share of calls to the strong model, per router, with the oracle and random mixing."""
    if result.pair is None or result.references["oracle"].pgr is None:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=FIGSIZE, dpi=DPI)
    colours = plt.get_cmap("tab10")
    for k, (name, r) in enumerate(result.routers.items()):
        if r.pgr is None:
            continue
        ax.plot(
            r.pgr.strong_share * 100,
            r.pgr.pgr,
            color=colours(k % 10),
            linewidth=2,
            label=f"{name} (APGR {r.apgr:.3f})",
        )
    oracle = result.references["oracle"]
    assert oracle.pgr is not None
    ax.plot(
        oracle.pgr.strong_share * 100,
        oracle.pgr.pgr,
        color="black",
        linestyle="--",
        label=f"oracle (APGR {oracle.apgr:.3f})",
    )
    ax.plot([0, 100], [0, 1], color="grey", linestyle=":", linewidth=2, label="random mixing (APGR 0.500)")
    for level in (0.5, 0.8):
        ax.axhline(level, color="grey", linewidth=0.8, alpha=0.5)
    strong, weak = result.pair
    ax.set_xlabel("calls to the strong model (% of prompts)")
    ax.set_ylabel("performance gap recovered (0 = weak model, 1 = strong)")
    ax.set_title(
        f"{result.name}: PGR vs share of strong calls, {result.n_prompts} test prompts\n"
        f"strong: {strong}, weak: {weak}",
        fontsize=10,
    )
    ax.set_xlim(0, 100)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out
