"""Where the console's figures come from — reports, ``[console]`` settings, the stats tables — and what it says
when one of them is missing (the empty states), in ledger and in open-access mode."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pointsman.config import load_config
from pointsman.console.context import console_settings_from
from pointsman.console.endpoints import stats_tables_ready
from pointsman.console.reports import ReportCache, custom_router_name, find_reports, load_report
from pointsman.db import create_db_engine
from pointsman.errors import ConfigError, DataError
from pointsman.gateway.app import create_app
from pointsman.gateway.billing import OpenAccessBilling
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import fake_catalog
from pointsman.providers.fake import FakeProviderServer, running_fake_provider
from pointsman.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
from _console_stack import ConsoleStack, console_stack, write_eval_report

# ---- reports -------------------------------------------------------------------------------------------------


def _report(path: Path, routers: dict[str, list[tuple[float, float]]] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    routers = routers or {"knn": [(0.001, 0.6), (0.002, 0.7)]}
    path.write_text(
        json.dumps(
            {
                "command": "pointsman eval",
                "datasets": [
                    {
                        "dataset": "d",
                        "n_prompts": 10,
                        "singles": [{"model": "m", "quality": 0.5, "cost_usd": 0.001}],
                        "best_single": {"model": "m"},
                        "routers": {
                            n: {"points": [{"cost_usd": c, "quality": q} for c, q in pts]}
                            for n, pts in routers.items()
                        },
                    }
                ],
            }
        )
    )
    return path


def test_reports_are_found_in_config_and_in_the_data_dir(tmp_path: Path) -> None:
    by_dir = _report(tmp_path / "eval1" / "report.json")
    by_file = _report(tmp_path / "elsewhere" / "mine.json")
    data = tmp_path / "data"
    saved = _report(data / "reports" / "nightly" / "report.json")
    custom = _report(data / "custom" / "support-bot" / "eval" / "report.json")
    found = find_reports([tmp_path / "eval1", by_file, tmp_path / "eval1", tmp_path / "missing"], data)
    assert found == [p.resolve() for p in (by_dir, by_file, saved, custom)]


def test_the_newest_report_is_shown_and_reread_when_it_changes(tmp_path: Path) -> None:
    old = _report(tmp_path / "a" / "report.json")
    new = _report(tmp_path / "b" / "report.json", {"neural": [(0.001, 0.9)]})
    os.utime(old, (1_000_000, 1_000_000))
    cache = ReportCache()
    shown = cache.newest([old, new])
    assert shown is not None and shown.path == new and shown.datasets[0].routers[0].name == "neural"
    _report(new, {"mf": [(0.001, 0.8)]})
    os.utime(new, (2_000_000_000, 2_000_000_000))
    shown = cache.newest([old, new])
    assert shown is not None and shown.datasets[0].routers[0].name == "mf"
    assert cache.newest([]) is None


def test_reports_being_written_are_skipped(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = _report(data / "custom" / "bot" / "report" / "report.json")
    _report(data / "custom" / "bot" / "report.new" / "report.json")
    _report(data / "reports" / ".nightly.tmp123" / "report.json")
    assert find_reports([], data) == [done.resolve()]
    assert custom_router_name(done, data) == "bot"
    assert custom_router_name(tmp_path / "elsewhere" / "report.json", data) is None


def test_a_real_eval_report_loads(tmp_path: Path) -> None:
    write_eval_report(tmp_path / "out")
    report = load_report(tmp_path / "out" / "report.json")
    (dataset,) = report.datasets
    assert {r.name for r in dataset.routers} == {"random", "best-single", "prior"}
    assert {m for m, _, _ in dataset.singles} == {"big", "mid", "small"}
    assert dataset.best_single == "big" and dataset.n_prompts == 48


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "cannot read"),
        ("[1, 2]", "no 'datasets' list"),
        (
            '{"datasets": [{"routers": {"x": {"points": [{"cost": 1}]}}}]}',
            "not a Pointsman evaluation report",
        ),
    ],
)
def test_a_broken_report_names_the_file_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        load_report(path)
    assert str(path) in err.value.message and "pointsman eval" in err.value.message


# ---- [console] settings --------------------------------------------------------------------------------------


def test_console_settings_read_relative_report_paths_from_the_config_dir(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "config.toml"
    config.parent.mkdir()
    config.write_text('[console]\nreports = ["runs/eval", "/abs/report.json"]\nspend_days = 7\n')
    settings = console_settings_from(load_config(config))
    assert settings.reports == [tmp_path / "conf" / "runs" / "eval", Path("/abs/report.json")]
    assert settings.spend_days == 7


def test_environment_overrides_the_console_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[console]\nspend_days = 7\n")
    monkeypatch.setenv("POINTSMAN_CONSOLE_SPEND_DAYS", "30")
    assert console_settings_from(load_config(config)).spend_days == 30


def test_a_typo_in_the_console_section_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[console]\nreport = []\n")
    with pytest.raises(ConfigError, match=r"line 2.*unknown field 'report'"):
        console_settings_from(load_config(config))


def test_stats_tables_missing_is_detected(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/empty.db")
    try:
        assert stats_tables_ready(engine) is False
    finally:
        engine.dispose()


# ---- empty states with the ledger ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    """A gateway with accounts and requests but no benchmark run and no evaluation report."""
    with console_stack(tmp_path_factory.mktemp("bare"), benchmarks=False, report=False) as s:
        yield s


def test_no_benchmark_runs_says_how_to_run_one(bare: ConsoleStack) -> None:
    with bare.client(bare.alice) as c:
        page = c.get("/console/endpoints").text
        nowhere = c.get("/console/endpoints", params={"region": "nowhere"}).text
    # only alice's streamed request was measured (passive telemetry): its point is shown, with the hint
    assert 'data-testid="no-runs"' in page and "pointsman bench run" in page
    assert re.findall(r'data-chart="ttft".*?</svg>', page, re.S)[0].count('class="series"') == 1
    assert 'data-series="cheap@other"' in page
    assert 'data-endpoint="fast@fake"' in page  # non-streamed traffic still shows its tries and price
    # a region with nothing at all: the empty state, no chart
    assert (
        'data-testid="empty"' in nowhere
        and "No benchmark runs or traffic samples yet in region nowhere" in nowhere
    )
    assert "pointsman bench run" in nowhere and 'data-chart="ttft"' not in nowhere


def test_no_report_says_how_to_write_one(bare: ConsoleStack) -> None:
    with bare.client(bare.alice) as c:
        page = c.get("/console/router").text
    assert (
        "No evaluation report yet" in page and "pointsman eval --data" in page and "[console] reports" in page
    )
    assert 'data-chart="traffic"' in page  # the traffic share does not need a report


def test_an_account_without_requests_gets_the_empty_spend_state(bare: ConsoleStack) -> None:
    with bare.client(bare.admin) as c:
        page = c.get("/console/spend").text
    assert "No requests charged to this account yet" in page and 'data-testid="balance">$0.000000<' in page


# ---- open access (no accounts) -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with running_fake_provider() as server:
        yield server


def _open_app(fake: FakeProviderServer, tmp: Path, config_text: str = "") -> TestClient:
    config = tmp / "config.toml"
    config.write_text(config_text)
    settings = Settings(data_dir=tmp / "data", config_file=config)
    catalog = fake_catalog(
        fake.base_url, {"one@fake": "fake-model#tokens=3", "two@fake": "fake-model#tokens=3"}
    )
    app = create_app(
        settings,
        gateway_settings=GatewaySettings(billing="open"),
        catalog=catalog,
        billing=OpenAccessBilling(),
    )
    return TestClient(app)


def test_open_access_explains_what_it_cannot_show(fake: FakeProviderServer, tmp_path: Path) -> None:
    with _open_app(fake, tmp_path) as c:
        for _ in range(3):
            c.post(
                "/v1/chat/completions",
                json={"model": "one@fake", "messages": [{"role": "user", "content": "x"}]},
            )
        c.post(
            "/v1/chat/completions", json={"model": "two@fake", "messages": [{"role": "user", "content": "x"}]}
        )
        endpoints = c.get("/console/endpoints")
        spend = c.get("/console/spend")
        router = c.get("/console/router")
    assert endpoints.status_code == spend.status_code == router.status_code == 200
    assert "no database" in endpoints.text and "pointsman bench run" in endpoints.text
    assert "without accounts or credit" in spend.text and "--open-access" in spend.text
    assert "open access (no accounts)" in spend.text and "log out" not in spend.text
    assert "75.0% (3 requests)" in router.text and "25.0% (1 request)" in router.text
    assert not (tmp_path / "data" / "pointsman.db").exists()  # looking never creates a database


def test_a_broken_report_is_an_error_on_the_page_not_a_500(fake: FakeProviderServer, tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "report.json").write_text("{")
    with _open_app(fake, tmp_path, '[console]\nreports = ["bad"]\n') as c:
        page = c.get("/console/router")
    assert page.status_code == 200
    assert 'role="alert"' in page.text and "cannot read the evaluation report" in page.text


def test_a_bad_console_section_stops_the_gateway_at_start(fake: FakeProviderServer, tmp_path: Path) -> None:
    with (
        pytest.raises(ConfigError, match="unknown field 'colour'"),
        _open_app(fake, tmp_path, "[console]\ncolour = 1\n"),
    ):
        pass


def test_a_custom_routers_report_names_it_and_marks_it_active(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    custom = _report(
        tmp_path / "data" / "custom" / "bot" / "report" / "report.json",
        {"custom-router": [(0.001, 0.8), (0.002, 0.9)], "off-the-shelf": [(0.001, 0.6), (0.002, 0.7)]},
    )
    older = _report(tmp_path / "data" / "reports" / "old" / "report.json", {"knn": [(0.001, 0.5)]})
    os.utime(older, (1_000_000, 1_000_000))
    with _open_app(fake, tmp_path, '[routing]\ndefault_router = "router@bot|q:1|c:0.01"\n') as c:
        newest = c.get("/console/router").text
        picked = c.get("/console/router", params={"report": str(older.resolve())}).text
        outside = c.get("/console/router", params={"report": "/etc/passwd"}).text
    assert 'data-series="bot (custom) (active)"' in newest and 'data-series="off-the-shelf"' in newest
    assert str(custom.resolve()) in newest and '<select id="report"' in newest
    assert 'data-series="knn"' in picked and "bot (custom)" not in picked.split("<svg")[1]
    assert "is not in this report" in picked
    assert 'data-series="bot (custom) (active)"' in outside  # only found reports can be picked


# ---- figures per endpoint (pure) -----------------------------------------------------------------------------


def test_runs_become_one_point_each_and_traffic_is_binned(fake: FakeProviderServer) -> None:
    from datetime import UTC, datetime, timedelta

    from pointsman.console.endpoints import TRAFFIC_BINS, Sample, build_view

    t0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    run = [
        Sample("one@fake", "eu", t0 + timedelta(seconds=i), True, v, 2.0, "benchmark", "r1")
        for i, v in enumerate((10.0, 30.0, 20.0))
    ]
    traffic = [
        Sample("two@fake", "eu", t0 + timedelta(seconds=6 * i), True, 100.0 + i % 3, 5.0, "traffic")
        for i in range(600)  # one hour of samples
    ]
    failed = [
        Sample("two@fake", "eu", t0, False, None, None, "traffic", error="timeout"),
        Sample("gone@old", "eu", t0, False, None, None, "benchmark", "r1", error="HTTP 500"),
    ]
    catalog = fake_catalog(fake.base_url, {"one@fake": "m", "two@fake": "m"}, prices={"two@fake": (2.0, 4.0)})
    view = build_view(run + traffic + failed, ["eu"], 1, t0, catalog, {"two@fake": (5, 1)})
    assert view.ttft["one@fake"] == [(t0.timestamp(), 20.0)]  # the run's median, at its first sample
    assert 10 <= len(view.ttft["two@fake"]) <= TRAFFIC_BINS + 1
    assert all(100.0 <= v <= 102.0 for _, v in view.ttft["two@fake"])
    rows = {r.endpoint: r for r in view.rows}
    assert rows["two@fake"].samples == 601 and rows["two@fake"].failed == 1
    assert rows["two@fake"].error_rate == pytest.approx(1 / 601) and rows["two@fake"].errors == ["timeout"]
    assert rows["two@fake"].attempt_error_rate == pytest.approx(0.2)
    assert rows["two@fake"].blended_usd_per_mtok == Decimal("2.5")
    assert rows["gone@old"].input_usd_per_mtok is None and rows["gone@old"].error_rate == 1.0
    assert "gone@old" not in view.ttft  # a failure never becomes a point on the chart


def test_many_runs_are_thinned_to_a_readable_number_of_points(fake: FakeProviderServer) -> None:
    from datetime import UTC, datetime, timedelta

    from pointsman.console.endpoints import MAX_POINTS, Sample, build_view

    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    runs = [
        Sample("one@fake", "eu", t0 + timedelta(hours=i), True, 100.0 + i, 2.0, "benchmark", f"r{i}")
        for i in range(500)
    ]
    catalog = fake_catalog(fake.base_url, {"one@fake": "m"})
    points = build_view(runs, ["eu"], 500, None, catalog, {}).ttft["one@fake"]
    assert MAX_POINTS // 2 <= len(points) <= MAX_POINTS
    assert [v for _, v in points] == sorted(v for _, v in points)  # the rising trend survives
    assert points[0][0] == t0.timestamp() and points[-1][1] > 590


def test_the_endpoints_page_reads_at_most_max_samples_and_says_so(
    fake: FakeProviderServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from pointsman.db import upgrade, utcnow
    from pointsman.stats.store import Sample, StatsStore

    url = f"sqlite:///{tmp_path}/stats.db"
    engine = create_db_engine(url)
    try:
        upgrade(engine)
        now = utcnow()
        StatsStore(engine).add_samples(
            Sample(
                "one@fake", "traffic", True, created_at=now - timedelta(minutes=i), ttft_ms=50.0, itl_ms=5.0
            )
            for i in range(150)
        )
    finally:
        engine.dispose()
    monkeypatch.setenv("POINTSMAN_DATABASE_URL", url)
    with _open_app(fake, tmp_path, "[console]\nmax_samples = 100\n") as c:
        page = c.get("/console/endpoints").text
    assert 'data-testid="truncated"' in page and "newest 100 samples" in page
    assert re.search(r'data-endpoint="one@fake">.*?<td class="num">100</td>', page, re.S)


def test_the_report_with_the_active_router_is_preferred_over_a_newer_one(
    fake: FakeProviderServer, tmp_path: Path
) -> None:
    custom = _report(
        tmp_path / "data" / "custom" / "bot" / "report" / "report.json",
        {"custom-router": [(0.001, 0.8)], "off-the-shelf": [(0.001, 0.6)]},
    )
    newer = _report(tmp_path / "data" / "reports" / "nightly" / "report.json", {"knn": [(0.001, 0.5)]})
    broken = tmp_path / "data" / "reports" / "zz" / "report.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{")
    os.utime(custom, (1_000_000, 1_000_000))
    os.utime(newer, (2_000_000, 2_000_000))
    os.utime(broken, (3_000_000, 3_000_000))
    with _open_app(fake, tmp_path, '[routing]\ndefault_router = "router@bot|q:1|c:0.01"\n') as c:
        active = c.get("/console/router").text
    with _open_app(fake, tmp_path, '[routing]\ndefault_router = "router@nothing|q:1"\n') as c:
        inactive = c.get("/console/router").text
    assert 'data-series="bot (custom) (active)"' in active and 'data-series="knn"' not in active
    # no report has the active router: the newest, which is broken, is reported as such
    assert "cannot read the evaluation report" in inactive and str(broken.resolve()) in inactive
    assert "Other reports:" in inactive and 'href="/console/router?report=' in inactive
