"""``pointsman route`` and ``pointsman endpoints`` through the real CLI app (CliRunner) and the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pointsman.cli.app import build_app

PROMPT = "What is the largest of 3, 9 and 4?"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Keep the developer's own ~/.config/pointsman/config.toml out of the tests.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("POINTSMAN_CONFIG_FILE", raising=False)


def test_route_prints_a_ranked_table_and_the_winner(runner: CliRunner) -> None:
    result = runner.invoke(build_app(), ["route", PROMPT], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    out = result.output
    for header in ("endpoint", "quality", "$/1M", "est. $", "TTFT", "ITL", "score"):
        assert header in out
    assert "chosen:" in out and "@" in out.split("chosen:")[1]
    assert "catalogue latency prior" in out


def test_route_table_marks_quality_that_is_not_predicted(runner: CliRunner) -> None:
    named = runner.invoke(build_app(), ["route", PROMPT, "-r", "claude-2@anthropic"], env={"COLUMNS": "160"})
    assert named.exit_code == 0, named.output
    assert "†" in named.output.split("chosen:")[0] and "† quality not from the scorer" in named.output
    ranked = runner.invoke(build_app(), ["route", PROMPT], env={"COLUMNS": "160"})
    assert ranked.exit_code == 0, ranked.output
    assert "†" not in ranked.output and "quality: scorer 'neural'" in ranked.output


def test_route_json_shape(runner: CliRunner) -> None:
    result = runner.invoke(
        build_app(), ["route", PROMPT, "--json", "--router", "router@q:1|c:4.65e-03|t:2.07e-05|i:3.11e-02"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["router"] == "router@q:1|c:0.00465|t:2.07e-05|i:0.0311"
    assert payload["chosen"] == payload["ranked"][0]["endpoint"]
    for row in payload["ranked"]:
        assert {"endpoint", "quality", "cost", "ttft_ms", "itl_ms", "score"} <= set(row)
    scores = [row["score"] for row in payload["ranked"]]
    assert scores == sorted(scores, reverse=True)


def test_route_reads_the_prompt_from_stdin(runner: CliRunner) -> None:
    result = runner.invoke(build_app(), ["route", "-", "--json"], input="word " * 20000)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["prompt_tokens"] > 8192
    assert all("llama-2-70b-chat" not in row["endpoint"] for row in payload["ranked"])


def test_route_with_config_adds_a_provider(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "pointsman.toml"
    config.write_text(
        "[routing]\n"
        'default_router = "router@lowest-cost"\n'
        "[catalog.providers.fake]\n"
        'base_url = "http://127.0.0.1:9/v1"\nttft_prior_ms = 5\nitl_prior_ms = 1\n'
        '[catalog.endpoints."mixtral-8x7b-instruct-v0.1@fake"]\n'
        'upstream_model = "m"\ninput_usd_per_mtok = 0.001\noutput_usd_per_mtok = 0.001\nprice_as_of = 2026-01-01\n'
    )
    result = runner.invoke(build_app(), ["route", PROMPT, "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["chosen"] == "mixtral-8x7b-instruct-v0.1@fake"
    assert payload["router"] == "router@lowest-cost"


def test_route_config_from_the_environment(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "env.toml"
    config.write_text(
        '[catalog.endpoints."claude-instant-1@anthropic"]\ninput_usd_per_mtok = 0\noutput_usd_per_mtok = 0\n'
    )
    result = runner.invoke(
        build_app(),
        ["route", PROMPT, "--json", "-r", "router@lowest-cost"],
        env={"POINTSMAN_CONFIG_FILE": str(config)},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["chosen"] == "claude-instant-1@anthropic"


def test_route_top_limits_rows(runner: CliRunner) -> None:
    result = runner.invoke(build_app(), ["route", PROMPT, "--top", "2"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "more (--top 0 shows all)" in result.output


def test_endpoints_lists_the_catalogue(runner: CliRunner) -> None:
    result = runner.invoke(build_app(), ["endpoints", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    names = {r["name"] for r in rows}
    assert "gpt-4-1106-preview@openai" in names and "llama-3.1-8b-instruct@ollama" not in names
    assert rows[0]["input_usd_per_mtok"]  # Decimals serialised as strings, exactly
    everything = json.loads(runner.invoke(build_app(), ["endpoints", "--json", "--all"]).output)
    assert "llama-3.1-8b-instruct@ollama" in {r["name"] for r in everything}
    table = runner.invoke(build_app(), ["endpoints"], env={"COLUMNS": "160"})
    assert table.exit_code == 0 and "(USD per 1M tokens)" in table.output


def _run_main(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from pointsman.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["route", "hi", "--router", "router@q:1|c:abc"], "not a number"),
        (["route", "hi", "--router", "router@q:1|c<0.0001"], "threshold 'c<0.0001'"),
        (["route", "hi", "--router", "mixtral@together"], "did you mean"),
        (["route", "hi", "--config", "/nonexistent/config.toml"], "no such config file"),
        (["route", "hi", "--scorer", "priro"], "unknown scorer 'priro'; did you mean 'prior'"),
        (["route", "hi", "--scorer", "/"], "not a scorer checkpoint"),
    ],
)
def test_errors_exit_2_with_a_message(args: list[str], fragment: str, tmp_path: Path) -> None:
    result = _run_main(
        args, env={"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path), "COLUMNS": "200"}
    )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "error:" in result.stderr and fragment in result.stderr


def test_route_imports_torch_only_to_predict(tmp_path: Path) -> None:
    """The default route runs the shipped neural scorer; a request that names its model, the prior and the
    catalogue listing never import torch (they stay instant)."""
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from pointsman.cli.app import build_app\n"
        "def run(*args):\n"
        "    r = CliRunner().invoke(build_app(), list(args))\n"
        "    assert r.exit_code == 0, r.output\n"
        "    return r.output\n"
        f"run('route', {PROMPT!r}, '--json', '-r', 'claude-2@anthropic')\n"
        f"run('route', {PROMPT!r}, '--json', '-r', 'claude-2@anthropic->mixtral-8x7b-instruct-v0.1@lowest-cost')\n"
        f"assert json.loads(run('route', {PROMPT!r}, '--json', '--scorer', 'prior'))['scorer'] == 'prior'\n"
        "run('endpoints', '--json')\n"
        "print('torch' in sys.modules)\n"
        f"assert json.loads(run('route', {PROMPT!r}, '--json'))['scorer'] == 'neural'\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
    assert "Loading weights" not in result.stderr, "the encoder's progress bar leaked into route's output"


def test_route_scorer_from_the_option_or_the_config(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "prior.toml"
    config.write_text('[routing]\nscorer = "prior"\n')
    by_config = runner.invoke(build_app(), ["route", PROMPT, "--json", "--config", str(config)])
    assert by_config.exit_code == 0, by_config.output
    assert json.loads(by_config.output)["scorer"] == "prior"
    overridden = runner.invoke(
        build_app(), ["route", PROMPT, "--json", "--config", str(config), "--scorer", "neural"]
    )
    assert overridden.exit_code == 0, overridden.output
    assert json.loads(overridden.output)["scorer"] == "neural"
