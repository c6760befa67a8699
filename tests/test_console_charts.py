"""The console's SVG charts: what is drawn, where, and that labels are escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

from pointsman.console.charts import Bar, Series, bar_chart, column_chart, line_chart, nice_ticks, time_ticks

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # also proves the markup is well-formed XML


def groups(root: ET.Element) -> dict[str, ET.Element]:
    return {g.attrib["data-series"]: g for g in root.iter(f"{SVG}g") if "data-series" in g.attrib}


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [(0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1.0]), (0, 7, [0, 2, 4, 6, 8]), (120, 480, [100, 200, 300, 400, 500])],
)
def test_nice_ticks_are_round_and_cover_the_range(lo: float, hi: float, expected: list[float]) -> None:
    assert nice_ticks(lo, hi) == pytest.approx(expected)


def test_nice_ticks_of_a_single_value_still_spread() -> None:
    ticks = nice_ticks(5, 5)
    assert ticks[0] < 5 < ticks[-1]


def test_time_ticks_fall_on_whole_hours_in_utc() -> None:
    lo = datetime(2026, 11, 30, 0, 10, tzinfo=UTC).timestamp()
    hi = datetime(2026, 11, 30, 9, 50, tzinfo=UTC).timestamp()
    ticks, label = time_ticks(lo, hi)
    assert [label(t) for t in ticks] == ["03:00", "06:00", "09:00"]


def test_time_ticks_of_a_short_range_label_both_ends() -> None:
    ticks, _ = time_ticks(1000.0, 1000.6)
    assert ticks == [1000.0, 1000.6]


def test_line_chart_draws_each_series_with_its_points_in_x_order() -> None:
    svg = line_chart(
        "ttft",
        [Series("a@p", [(3, 30), (1, 10), (2, 20)]), Series("b@q", [(1, 50)], kind="points")],
        title="TTFT",
        x_label="t",
        y_label="ms",
    )
    root = parse(svg)
    found = groups(root)
    assert set(found) == {"a@p", "b@q"}
    assert found["a@p"].attrib["data-points"] == "3"
    path = found["a@p"].find(f"{SVG}path")
    assert path is not None
    xs = [float(x) for x in re.findall(r"[ML]([\d.]+),", path.attrib["d"])]
    ys = [float(y) for y in re.findall(r",([\d.]+)", path.attrib["d"])]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)  # rising values are drawn upwards
    assert found["b@q"].find(f"{SVG}path") is None  # markers only
    assert len(found["b@q"].findall(f"{SVG}circle")) == 1


def test_labels_are_escaped() -> None:
    evil = '<script>alert("x")</script>'
    svg = line_chart("c", [Series(evil, [(1, 1), (2, 2)])], title=evil, x_label=evil, y_label="y")
    assert "<script>" not in svg
    assert evil in {g.attrib["data-series"] for g in parse(svg).iter(f"{SVG}g") if "data-series" in g.attrib}
    bars = bar_chart("b", [Bar(evil, 1.0)], title=evil)
    assert "<script>" not in bars
    parse(bars)


def test_log_x_spreads_decades_evenly() -> None:
    svg = line_chart(
        "q",
        [Series("r", [(0.01, 0.5), (0.1, 0.6), (1.0, 0.7)])],
        title="",
        x_label="",
        y_label="",
        log_x=True,
    )
    circles = groups(parse(svg))["r"].findall(f"{SVG}circle")
    cx = [float(c.attrib["cx"]) for c in circles]
    assert cx[1] - cx[0] == pytest.approx(cx[2] - cx[1], abs=0.2)


def test_log_x_refuses_non_positive_costs() -> None:
    with pytest.raises(AssertionError, match="positive"):
        line_chart("q", [Series("r", [(0.0, 1.0)])], title="", x_label="", y_label="", log_x=True)


def test_an_empty_chart_is_a_bug_not_a_blank_picture() -> None:
    with pytest.raises(AssertionError, match="empty state"):
        line_chart("c", [Series("a", [])], title="", x_label="", y_label="")
    with pytest.raises(AssertionError, match="empty state"):
        bar_chart("b", [], title="")


def test_emphasised_series_is_drawn_last_and_thicker() -> None:
    svg = line_chart(
        "c",
        [Series("active", [(1, 1), (2, 2)], emphasis=True), Series("other", [(1, 1), (2, 2)])],
        title="",
        x_label="",
        y_label="",
    )
    order = [g.attrib["data-series"] for g in parse(svg).iter(f"{SVG}g") if "data-series" in g.attrib]
    assert order == ["other", "active"]
    widths = {
        g.attrib["data-series"]: g.find(f"{SVG}path").attrib["stroke-width"]  # type: ignore[union-attr]
        for g in parse(svg).iter(f"{SVG}g")
        if "data-series" in g.attrib
    }
    assert float(widths["active"]) > float(widths["other"])


def test_bar_lengths_are_proportional() -> None:
    root = parse(bar_chart("b", [Bar("x", 4.0), Bar("y", 1.0), Bar("z", 0.0)], title="t"))
    width = {name: float(g.find(f"{SVG}rect").attrib["width"]) for name, g in groups(root).items()}  # type: ignore[union-attr]
    assert width["x"] == pytest.approx(4 * width["y"], abs=0.5) and width["z"] == 0  # drawn to 0.1 px


def test_column_heights_are_proportional_and_zero_days_have_no_label() -> None:
    svg = column_chart("d", [Bar("11-29", 0.0), Bar("11-30", 2.0), Bar("12-01", 1.0)], title="t")
    root = parse(svg)
    found = groups(root)
    height = {name: float(g.find(f"{SVG}rect").attrib["height"]) for name, g in found.items()}  # type: ignore[union-attr]
    assert height["11-30"] == pytest.approx(2 * height["12-01"], abs=0.2) and height["11-29"] == 0
    texts = ["".join(t.itertext()) for t in found["11-29"].iter(f"{SVG}text")]
    assert texts == ["11-29"]  # the day label, no value
