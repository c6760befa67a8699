"""``pointsman bench plot``: TTFT and ITL over time per endpoint, one panel per metric, as a PNG.

Each endpoint has one colour in both panels. Benchmark runs are lines through the median of each run;
routed traffic is faint dots of the same colour. Only usable samples are drawn; each endpoint's legend entry
counts its failed requests. A metric whose values span more than 20× gets a log axis, so a 2-second outlier
does not flatten a 50-millisecond endpoint into the floor.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pointsman.stats.store import Sample

__all__ = ["MAX_ENDPOINTS", "latency_figure", "plot_latency"]

MAX_ENDPOINTS = 16  # more lines than this are unreadable; the endpoints with the most samples are drawn
METRICS = (("ttft_ms", "TTFT (ms)", "Time to first token"), ("itl_ms", "ITL (ms)", "Inter-token latency"))


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def latency_figure(samples: Sequence[Sample], *, title: str | None = None) -> Any:
    """A matplotlib figure with one panel per metric (TTFT, ITL) and one colour per endpoint."""
    plt = _pyplot()
    ok = [s for s in samples if s.ok and s.ttft_ms is not None]
    failed: dict[str, int] = defaultdict(int)
    for s in samples:
        if not s.ok:
            failed[s.endpoint] += 1
    counts: dict[str, int] = defaultdict(int)
    for s in ok:
        counts[s.endpoint] += 1
    endpoints = sorted(counts, key=lambda e: (-counts[e], e))[:MAX_ENDPOINTS]
    hidden = len(counts) - len(endpoints)
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(11.0, 7.5), dpi=110, sharex=True)
    palette = plt.get_cmap("tab10" if len(endpoints) <= 10 else "tab20")
    for ax, (field, label, panel_title) in zip(axes, METRICS, strict=True):
        values: list[float] = []
        for i, endpoint in enumerate(endpoints):
            colour = palette(i % palette.N)
            mine = [s for s in ok if s.endpoint == endpoint and getattr(s, field) is not None]
            runs: dict[str, list[Sample]] = defaultdict(list)
            traffic = []
            for s in mine:
                if s.source == "benchmark" and s.run_id is not None:
                    runs[s.run_id].append(s)
                else:
                    traffic.append(s)
            points = sorted(
                (min(s.created_at for s in run), statistics.median(getattr(s, field) for s in run))
                for run in runs.values()
            )
            legend = endpoint + (f" ({failed[endpoint]} failed)" if failed.get(endpoint) else "")
            if points:
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    "o-",
                    color=colour,
                    lw=1.8,
                    ms=5,
                    label=legend,
                )
                legend = "_nolegend_"
            if traffic:
                ax.plot(
                    [s.created_at for s in traffic],
                    [getattr(s, field) for s in traffic],
                    ".",
                    color=colour,
                    alpha=0.35,
                    ms=4,
                    label=legend,
                )
            values.extend(getattr(s, field) for s in mine)
        positive = [v for v in values if v > 0]
        if positive and max(positive) / min(positive) > 20:
            ax.set_yscale("log")
        ax.set_ylabel(label)
        ax.set_title(panel_title, loc="left", fontsize=11)
        ax.grid(True, alpha=0.3)
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes[-1].set_xlabel("time (UTC)")
    handles, labels = axes[0].get_legend_handles_labels()
    note = f"{hidden} more endpoint(s) not drawn" if hidden else None
    if handles:
        fig.legend(
            handles, labels, loc="center right", fontsize=8, title=note, title_fontsize=8, frameon=False
        )
        fig.subplots_adjust(right=0.74)
    else:
        axes[0].text(0.5, 0.5, "no usable samples", transform=axes[0].transAxes, ha="center", va="center")
    fig.suptitle(title or "Measured latency per endpoint (lines: benchmark runs, dots: traffic)", fontsize=12)
    return fig


def plot_latency(samples: Sequence[Sample], out: Path, *, title: str | None = None) -> Path:
    """Write the figure to ``out`` (PNG), creating its directory."""
    plt = _pyplot()
    fig = latency_figure(samples, title=title)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
