"""``pointsman bench run|schedule|show|plot`` through the real command registry, against a fake provider."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pointsman.cli.app import build_app
from pointsman.providers.fake import FakeConfig, running_fake_provider

ENDPOINTS = "mixtral-8x7b-instruct-v0.1@fake,gpt-4-1106-preview@fake"


def _config(tmp_path: Path, base_url: str, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[catalog.providers.fake]
base_url = "{base_url}"
ttft_prior_ms = 50
itl_prior_ms = 5

[catalog.endpoints."mixtral-8x7b-instruct-v0.1@fake"]
upstream_model = "fake-model#ttft_ms=20&itl_ms=2"
input_usd_per_mtok = 0.5
output_usd_per_mtok = 1.5
price_as_of = 2026-01-01

[catalog.endpoints."gpt-4-1106-preview@fake"]
upstream_model = "fake-model#fault=500"
input_usd_per_mtok = 10
output_usd_per_mtok = 30
price_as_of = 2026-01-01

[stats]
region = "test-region"
bench_repeats = 2
bench_max_tokens = 8
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("POINTSMAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("POINTSMAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps tables to the terminal; keep rows on one line
    return CliRunner()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_run_show_and_plot(runner: CliRunner, tmp_path: Path) -> None:
    app = build_app()
    with running_fake_provider(FakeConfig(tokens=8)) as fake:
        config = _config(tmp_path, fake.base_url)
        ran = runner.invoke(app, ["bench", "run", "--endpoints", ENDPOINTS, "--config", str(config)])
        assert ran.exit_code == 0, ran.output
        # The plan and its cost estimate come first, then the results.
        assert ran.output.index("estimated cost at most $") < ran.output.index(
            "mixtral-8x7b-instruct-v0.1@fake "
        )
        assert "region 'test-region'" in ran.output
        assert "upstream_status_error ×4" in ran.output and "4 request(s) failed" in ran.output
        assert fake.stats.total() == 8

        as_json = runner.invoke(
            app,
            [
                "bench",
                "run",
                "--endpoints",
                ENDPOINTS.split(",")[0],
                "--repeats",
                "1",
                "--json",
                "--config",
                str(config),
            ],
        )
        assert as_json.exit_code == 0, as_json.output
        report = json.loads(as_json.stdout.strip().splitlines()[-1])
        (row,) = report["endpoints"]
        assert row["ok"] == 2 and row["requests"] == 2 and 20 <= row["ttft_p50_ms"] < 400
        assert report["region"] == "test-region"

    shown = runner.invoke(app, ["bench", "show", "--config", str(config), "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert len(data["runs"]) == 2 and {r["status"] for r in data["runs"]} == {"done"}
    figures = data["figures"]
    assert figures["mixtral-8x7b-instruct-v0.1@fake"]["source"] == "benchmark"
    assert figures["gpt-4-1106-preview@fake"]["source"] == "prior"
    assert "4 failed request(s)" in figures["gpt-4-1106-preview@fake"]["note"]
    table = runner.invoke(app, ["bench", "show", "--config", str(config)])
    assert table.exit_code == 0 and "what the router uses" in table.output

    out = tmp_path / "plots" / "latency.png"
    plotted = runner.invoke(app, ["bench", "plot", "--out", str(out), "--config", str(config)])
    assert plotted.exit_code == 0, plotted.output
    assert _png_size(out) == (1210, 825)


def test_errors_tell_the_fix(runner: CliRunner, tmp_path: Path) -> None:
    app = build_app()
    config = _config(tmp_path, "http://127.0.0.1:9/v1")
    over = runner.invoke(
        app, ["bench", "run", "--endpoints", ENDPOINTS, "--budget", "0.000001", "--config", str(config)]
    )
    assert over.exit_code != 0 and "raise --budget" in over.exception.message  # type: ignore[union-attr]
    bad = runner.invoke(app, ["bench", "run", "--budget", "lots", "--config", str(config)])
    assert "--budget must be an amount in USD" in bad.exception.message  # type: ignore[union-attr]
    typo = runner.invoke(app, ["bench", "run", "--endpoints", "mixtral@fake", "--config", str(config)])
    assert "unknown endpoint" in typo.exception.message  # type: ignore[union-attr]
    bad_config = tmp_path / "bad.toml"
    bad_config.write_text('[stats]\nregoin = "eu"\n', encoding="utf-8")
    wrong = runner.invoke(app, ["bench", "show", "--config", str(bad_config)])
    assert "unknown field 'regoin'" in wrong.exception.message  # type: ignore[union-attr]
    empty = runner.invoke(app, ["bench", "show", "--config", str(config)])
    assert empty.exit_code == 0 and "run `pointsman bench run`" in empty.output


def test_schedule_runs_every_interval(runner: CliRunner, tmp_path: Path) -> None:
    app = build_app()
    with running_fake_provider(FakeConfig(tokens=3)) as fake:
        config = _config(tmp_path, fake.base_url)
        # 0.0001 h = 0.36 s between runs; stop after two.
        done = runner.invoke(
            app,
            ["bench", "schedule", "--every-hours", "0.0001", "--max-runs", "2", "--config", str(config)],
            env={"POINTSMAN_STATS_BENCH_ENDPOINTS": '["mixtral-8x7b-instruct-v0.1@fake"]'},
        )
    assert done.exit_code == 0, done.output
    assert done.output.count("done: 0 failure(s)") == 2
    shown = json.loads(runner.invoke(app, ["bench", "show", "--json", "--config", str(config)]).stdout)
    starts = sorted(r["started_at"] for r in shown["runs"])
    assert len(starts) == 2
    from datetime import datetime

    gap = datetime.fromisoformat(starts[1]) - datetime.fromisoformat(starts[0])
    assert gap.total_seconds() >= 0.35


def test_prune(runner: CliRunner, tmp_path: Path) -> None:
    from datetime import timedelta

    from pointsman.db import utcnow
    from pointsman.settings import Settings
    from pointsman.stats.store import Sample, StatsStore

    config = _config(tmp_path, "http://127.0.0.1:9/v1")
    store = StatsStore.open(Settings(data_dir=tmp_path / "data"))
    old = utcnow() - timedelta(days=40)
    store.add_samples(
        [
            Sample("m@p", "traffic", True, created_at=old, ttft_ms=1.0),
            Sample("m@p", "traffic", True, ttft_ms=2.0),
        ]
    )
    done = runner.invoke(build_app(), ["bench", "prune", "--older-than-days", "30", "--config", str(config)])
    assert done.exit_code == 0 and "deleted 1 sample(s)" in done.output
    assert [s.ttft_ms for s in store.samples()] == [2.0]
    store.close()
