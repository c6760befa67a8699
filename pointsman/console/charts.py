"""Charts as inline SVG, drawn on the server: no JavaScript, no CDN, works offline.

Two shapes cover every panel: ``line_chart`` (series of (x, y) points — latency over time, quality–cost curves,
with the single models as unconnected markers) and ``bar_chart`` (labelled horizontal bars — spend by model,
traffic share, spend by day). Each chart is an ``<svg data-chart="NAME">`` whose series are
``<g data-series="LABEL">`` groups, so tests (and a reader of the HTML) can find what was drawn; every point
carries a ``<title>`` tooltip with its exact value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

__all__ = ["PALETTE", "Bar", "Series", "bar_chart", "column_chart", "line_chart", "nice_ticks", "time_ticks"]

# Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), then a few more.
PALETTE = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
    "#999999",
    "#882255",
)

Formatter = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    """One named series. ``kind="line"`` joins the points in x order; ``"points"`` draws markers only."""

    name: str
    points: Sequence[tuple[float, float]]
    kind: str = "line"
    color: str | None = None
    dashed: bool = False
    emphasis: bool = False  # drawn last (on top) and thicker: the active router

    def __post_init__(self) -> None:
        assert self.kind in ("line", "points"), f"unknown series kind {self.kind!r}"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""  # shown after the value, e.g. "(12 requests)"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 × a power of ten."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    value = first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < hi:
        ticks.append(round(value, 12))
    return ticks


_TIME_STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)


def time_ticks(lo: float, hi: float, count: int = 5) -> tuple[list[float], Formatter]:
    """Ticks on whole minutes, hours or days (UTC) over the epoch-second range [lo, hi], and their labels."""
    span = max(hi - lo, 1.0)
    step = next((s for s in _TIME_STEPS if span / s <= count), _TIME_STEPS[-1])
    if span < 60:
        step = max(1, round(span / count))
    first = math.ceil(lo / step) * step
    ticks = [float(t) for t in range(int(first), int(hi) + 1, int(step))]
    if len(ticks) < 2:  # a range shorter than one step: label its ends
        ticks = [lo, hi] if hi > lo else [lo]
    if step >= 86400:
        pattern = "%m-%d"
    elif span > 86400:
        pattern = "%m-%d %H:%M"
    elif step < 60:
        pattern = "%H:%M:%S"
    else:
        pattern = "%H:%M"

    def label(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime(pattern)

    return ticks, label


def _fmt_number(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _attr(value: object) -> str:
    return str(escape(str(value)))


def _color(series: Series, index: int) -> str:
    return series.color or PALETTE[index % len(PALETTE)]


def line_chart(
    name: str,
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_time: bool = False,
    log_x: bool = False,
    x_format: Formatter = _fmt_number,
    y_format: Formatter = _fmt_number,
    y_from_zero: bool = True,
    width: int = 920,
    height: int = 300,
) -> Markup:
    """An SVG line/marker chart. ``x_time``: x values are epoch seconds, labelled in UTC."""
    drawn = [s for s in series if s.points]
    assert drawn, f"chart {name!r} has no points; render an empty state instead"
    xs = [x for s in drawn for x, _ in s.points]
    ys = [y for s in drawn for _, y in s.points]
    if log_x:
        assert min(xs) > 0, f"chart {name!r}: a log x axis needs positive x values"
    legend_w = min(260, 14 + 7 * max(len(s.name) for s in drawn) + 24)
    left, right, top, bottom = 64, legend_w + 16, 34, 46
    plot_w, plot_h = width - left - right, height - top - bottom

    def tx(v: float) -> float:
        return math.log10(v) if log_x else v

    x_lo, x_hi = tx(min(xs)), tx(max(xs))
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 0.5, x_hi + 0.5
    y_ticks = nice_ticks(min(0.0, min(ys)) if y_from_zero else min(ys), max(ys))
    y_lo, y_hi = y_ticks[0], y_ticks[-1]
    if x_time:
        x_ticks, x_tick_label = time_ticks(x_lo, x_hi)
    elif log_x:
        x_ticks = [float(p) for p in range(math.floor(x_lo), math.ceil(x_hi) + 1)]
        if len(x_ticks) < 3:  # less than two decades: label the ends as well
            x_ticks = sorted({*x_ticks, x_lo, x_hi})
        x_tick_label = lambda t: x_format(10**t)  # noqa: E731
        x_lo, x_hi = min(x_lo, x_ticks[0]), max(x_hi, x_ticks[-1])
    else:
        x_ticks = nice_ticks(x_lo, x_hi)
        x_lo, x_hi = x_ticks[0], x_ticks[-1]
        x_tick_label = x_format

    def px(v: float) -> float:
        return left + (tx(v) - x_lo) / (x_hi - x_lo) * plot_w

    def px_t(t: float) -> float:  # an already-transformed tick value
        return left + (t - x_lo) / (x_hi - x_lo) * plot_w

    def py(v: float) -> float:
        return top + plot_h - (v - y_lo) / (y_hi - y_lo) * plot_h

    out = [
        f'<svg class="chart" data-chart="{_attr(name)}" role="img" aria-label="{_attr(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text class="chart-title" x="{left}" y="20">{escape(title)}</text>',
    ]
    for t in y_ticks:
        y = py(t)
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(y_format(t))}</text>'
        )
    for t in x_ticks:
        if t < x_lo - 1e-9 or t > x_hi + 1e-9:
            continue
        x = px_t(t)
        out.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + plot_h}"/>')
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{escape(x_tick_label(t))}</text>"
        )
    out.append(f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none"/>')
    out.append(
        f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
    )
    out.append(
        f'<text class="axis-label" transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    x_show = (lambda v: x_tick_label(v)) if x_time else x_format
    order = sorted(range(len(drawn)), key=lambda i: drawn[i].emphasis)  # emphasised series on top
    for i in order:
        s = drawn[i]
        color = _color(s, i)
        pts = sorted(s.points) if s.kind == "line" else list(s.points)
        out.append(f'<g class="series" data-series="{_attr(s.name)}" data-points="{len(pts)}">')
        if s.kind == "line" and len(pts) > 1:
            path = " ".join(
                f"{'M' if j == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for j, (x, y) in enumerate(pts)
            )
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            stroke = 3.5 if s.emphasis else 2
            out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="{stroke}"{dash}/>')
        radius = (4 if s.emphasis else 3) if s.kind == "line" else 5
        for x, y in pts:
            out.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{radius}" fill="{color}">'
                f"<title>{escape(s.name)}: {escape(x_show(x))}, {escape(y_format(y))}</title></circle>"
            )
        out.append("</g>")
    lx = width - right + 12
    for i, s in enumerate(drawn):
        y = top + 8 + i * 18
        color = _color(s, i)
        mark = (
            f'<line x1="{lx}" x2="{lx + 16}" y1="{y}" y2="{y}" stroke="{color}" stroke-width="3"/>'
            if s.kind == "line"
            else f'<circle cx="{lx + 8}" cy="{y}" r="5" fill="{color}"/>'
        )
        out.append(
            f'<g class="legend-item">{mark}<text x="{lx + 22}" y="{y + 4}">{escape(_clip(s.name, 32))}</text></g>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def bar_chart(
    name: str,
    bars: Sequence[Bar],
    *,
    title: str,
    value_format: Formatter = _fmt_number,
    width: int = 920,
    color: str = PALETTE[0],
) -> Markup:
    """Horizontal bars, one per label, longest scaled to the plot width; each bar is a ``data-series``."""
    assert bars, f"chart {name!r} has no bars; render an empty state instead"
    label_w = min(300, 16 + 7 * max(len(b.label) for b in bars))
    value_w = 150
    row_h, top = 24, 32
    height = top + row_h * len(bars) + 10
    plot_w = width - label_w - value_w
    biggest = max(b.value for b in bars) or 1.0
    out = [
        f'<svg class="chart" data-chart="{_attr(name)}" role="img" aria-label="{_attr(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text class="chart-title" x="4" y="20">{escape(title)}</text>',
    ]
    for i, b in enumerate(bars):
        y = top + i * row_h
        w = max(0.0, b.value) / biggest * plot_w
        text = value_format(b.value) + (f" {b.note}" if b.note else "")
        out.append(f'<g class="series" data-series="{_attr(b.label)}" data-value="{b.value!r}">')
        out.append(
            f'<text class="tick" x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(_clip(b.label, 40))}</text>'
        )
        out.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" fill="{color}">'
            f"<title>{escape(b.label)}: {escape(text)}</title></rect>"
        )
        out.append(f'<text class="tick" x="{label_w + w + 6:.1f}" y="{y + 16}">{escape(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return Markup("".join(out))


def column_chart(
    name: str,
    bars: Sequence[Bar],
    *,
    title: str,
    value_format: Formatter = _fmt_number,
    width: int = 920,
    height: int = 240,
    color: str = PALETTE[1],
) -> Markup:
    """Vertical bars in order (e.g. one per day), labelled below; each bar is a ``data-series``. Non-zero
    values are written above their bar; every bar has a tooltip."""
    assert bars, f"chart {name!r} has no bars; render an empty state instead"
    left, right, top, bottom = 64, 16, 34, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(0.0, max(max(b.value for b in bars), 0.0) or 1.0, 4)
    hi = ticks[-1] or 1.0
    slot = plot_w / len(bars)
    every = max(1, math.ceil(len(bars) * 60 / plot_w))  # label every n-th bar so labels never overlap
    out = [
        f'<svg class="chart" data-chart="{_attr(name)}" role="img" aria-label="{_attr(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text class="chart-title" x="{left}" y="20">{escape(title)}</text>',
    ]
    for t in ticks:
        y = top + plot_h - t / hi * plot_h
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(value_format(t))}</text>'
        )
    for i, b in enumerate(bars):
        h = max(0.0, b.value) / hi * plot_h
        x = left + i * slot + slot * 0.15
        w = slot * 0.7
        text = value_format(b.value) + (f" {b.note}" if b.note else "")
        out.append(f'<g class="series" data-series="{_attr(b.label)}" data-value="{b.value!r}">')
        out.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{w:.1f}" height="{h:.1f}" fill="{color}">'
            f"<title>{escape(b.label)}: {escape(text)}</title></rect>"
        )
        if b.value > 0:
            out.append(
                f'<text class="tick" x="{x + w / 2:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle">'
                f"{escape(value_format(b.value))}</text>"
            )
        if i % every == 0 or i == len(bars) - 1:
            out.append(
                f'<text class="tick" x="{x + w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                f"{escape(b.label)}</text>"
            )
        out.append("</g>")
    out.append(
        f'<line class="frame" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"/>'
    )
    out.append("</svg>")
    return Markup("".join(out))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
