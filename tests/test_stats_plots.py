"""The latency plot: one panel per metric, one colour per endpoint, failures counted in the legend."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pointsman.db import utcnow
from pointsman.stats.plots import MAX_ENDPOINTS, latency_figure, plot_latency
from pointsman.stats.store import Sample


def _samples() -> list[Sample]:
    now = utcnow()
    out = []
    for run in range(3):
        t = now - timedelta(hours=3 * (3 - run))
        out += [Sample("m@fast", "benchmark", True, run_id=f"r{run}", created_at=t, ttft_ms=50.0, itl_ms=5.0)]
        out += [
            Sample("m@slow", "benchmark", True, run_id=f"r{run}", created_at=t, ttft_ms=2000.0, itl_ms=9.0)
        ]
    out += [Sample("m@fast", "traffic", True, created_at=now, ttft_ms=60.0, itl_ms=6.0)]
    out += [Sample("m@slow", "benchmark", False, run_id="r0", created_at=now, error="timeout: x")]
    return out


def test_panels_lines_and_legend() -> None:
    import matplotlib.pyplot as plt

    fig = latency_figure(_samples())
    try:
        ttft, itl = fig.axes[:2]
        assert (
            ttft.get_title(loc="left") == "Time to first token"
            and itl.get_title(loc="left") == "Inter-token latency"
        )
        assert ttft.get_ylabel() == "TTFT (ms)" and itl.get_ylabel() == "ITL (ms)"
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert labels == ["m@fast", "m@slow (1 failed)"]
        # Each endpoint: a line of run medians (3 runs) in both panels; traffic as separate dots.
        fast_lines = [line for line in ttft.get_lines() if list(line.get_ydata()) == [50.0, 50.0, 50.0]]
        assert len(fast_lines) == 1 and fast_lines[0].get_linestyle() == "-"
        assert any(
            list(line.get_ydata()) == [60.0] and line.get_linestyle() == "None" for line in ttft.get_lines()
        )
        # 50 ms and 2 s on one axis: log scale, so both stay readable. ITL spans less than 20×: linear.
        assert ttft.get_yscale() == "log" and itl.get_yscale() == "linear"
    finally:
        plt.close(fig)


def test_empty_and_crowded_plots(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    empty = latency_figure([])
    assert any(t.get_text() == "no usable samples" for t in empty.axes[0].texts)
    plt.close(empty)
    crowd = [Sample(f"m@p{i:02d}", "traffic", True, ttft_ms=float(i + 1)) for i in range(MAX_ENDPOINTS + 4)]
    fig = latency_figure(crowd)
    assert len(fig.legends[0].get_texts()) == MAX_ENDPOINTS
    assert fig.legends[0].get_title().get_text() == "4 more endpoint(s) not drawn"
    plt.close(fig)
    out = plot_latency(_samples(), tmp_path / "deep" / "plot.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
