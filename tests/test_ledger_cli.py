"""``pointsman db|keys|credits`` through CliRunner on a SQLite file under a temporary data dir, and the real
entry point for the error path (exit code 2 and a message that names the fix)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pointsman.cli import credits, db, keys
from pointsman.db import head_revision
from pointsman.errors import ConfigError, InvalidRequestError, UnknownNameError


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("POINTSMAN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("POINTSMAN_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # rich tables wide enough not to wrap cells
    app = typer.Typer()
    for module in (db, keys, credits):
        module.register(app)
    return app


def run(app: typer.Typer, *args: str) -> str:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_db_upgrade(cli: typer.Typer, tmp_path: Path) -> None:
    head = head_revision()
    assert f"migrated empty -> {head}" in run(cli, "db", "upgrade")
    assert f"already at {head}" in run(cli, "db", "upgrade")
    assert (tmp_path / "pointsman.db").exists()


def test_keys_and_credits_round_trip(cli: typer.Typer) -> None:
    key = run(cli, "keys", "create", "--account", "alice").strip().splitlines()[-1]
    assert key.startswith("pm-")
    made = json.loads(run(cli, "keys", "create", "--account", "ops", "--credit", "0", "--admin", "--json"))
    assert made["admin"] and made["balance_usd"] == "0.000000" and made["key"].startswith("pm-")
    listed = json.loads(run(cli, "keys", "list", "--json"))
    assert [(k["account"], k["admin"]) for k in listed] == [("alice", False), ("ops", True)]
    assert key not in run(cli, "keys", "list")
    assert "50.000000" in run(cli, "credits", "show", "--account", "alice")
    assert "$52.500000 available" in run(
        cli, "credits", "top-up", "--account", "alice", "--usd", "2.5", "--note", "inv-1"
    )
    run(cli, "credits", "top-up", "--account", "alice", "--usd", "1", "--grant")
    shown = json.loads(run(cli, "credits", "show", "--account", "alice", "--json"))
    assert shown["balance_usd"] == "53.500000"
    assert (shown["granted_usd"], shown["topped_up_usd"], shown["spent_usd"]) == (
        "51.000000",
        "2.500000",
        "0.000000",
    )
    history = json.loads(run(cli, "credits", "history", "--account", "alice", "--json"))
    assert [(h["kind"], h["amount_usd"], h["note"]) for h in history] == [
        ("grant", "1.000000", None),
        ("top_up", "2.500000", "inv-1"),
        ("grant", "50.000000", "signup credit"),
    ]
    assert "signup credit" in run(cli, "credits", "history", "--account", "alice")
    revoked = run(cli, "keys", "revoke", key[:12])
    assert "revoked" in revoked and key not in revoked
    assert "returned 0 expired" in run(cli, "credits", "sweep")


def test_cli_errors(cli: typer.Typer) -> None:
    run(cli, "keys", "create", "--account", "alice")
    with pytest.raises(UnknownNameError, match="did you mean 'alice'"):
        CliRunner().invoke(cli, ["credits", "show", "--account", "alicee"], catch_exceptions=False)
    with pytest.raises(InvalidRequestError, match="not a number"):
        CliRunner().invoke(
            cli, ["credits", "top-up", "--account", "alice", "--usd", "lots"], catch_exceptions=False
        )
    with pytest.raises(InvalidRequestError, match="day, week, month"):
        CliRunner().invoke(
            cli,
            ["keys", "create", "--account", "a", "--budget", "1", "--budget-period", "year"],
            catch_exceptions=False,
        )


def test_entry_point_reports_errors_with_exit_code_2(tmp_path: Path) -> None:
    env = {**os.environ, "POINTSMAN_DATA_DIR": str(tmp_path)}
    env.pop("POINTSMAN_DATABASE_URL", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from pointsman.cli import main; main()",
            "credits",
            "show",
            "--account",
            "nobody",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "unknown account 'nobody'" in proc.stderr


def test_signup_credit_from_the_config_file_and_the_environment(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[ledger]\nsignup_credit_usd = 7\n")
    monkeypatch.setenv("POINTSMAN_CONFIG_FILE", str(config))
    assert json.loads(run(cli, "keys", "create", "--account", "a", "--json"))["balance_usd"] == "7.000000"
    monkeypatch.setenv("POINTSMAN_LEDGER_SIGNUP_CREDIT_USD", "9")  # the environment wins
    assert json.loads(run(cli, "keys", "create", "--account", "b", "--json"))["balance_usd"] == "9.000000"
    config.write_text("[ledger]\nsignup_credit = 7\n")
    with pytest.raises(ConfigError, match=r"config.toml, line 2: ledger.signup_credit: unknown field"):
        CliRunner().invoke(cli, ["keys", "create", "--account", "c"], catch_exceptions=False)
