"""``POINTSMAN_SCORER_TORCH_THREADS``: the torch threads ``pointsman route`` and ``pointsman serve`` give the
neural scorer, set once when it loads (default 1); a bad value stops the command with a message naming the
variable. Each case runs in a fresh interpreter, since ``torch.set_num_threads`` is process-wide."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)

VAR = "POINTSMAN_SCORER_TORCH_THREADS"

ROUTE = """
import torch
from typer.testing import CliRunner
from pointsman.cli.app import build_app

result = CliRunner().invoke(build_app(), ["route", "Which is larger, 3 or 9?", "--json"])
assert result.exit_code == 0, (result.output, result.exception)
assert '"scorer": "neural"' in result.output, result.output
print("threads", torch.get_num_threads())
"""

SERVE = """
import sys, torch
from pathlib import Path
from pointsman.gateway.app import create_app
from pointsman.gateway.billing import OpenAccessBilling
from pointsman.gateway.testing import running_gateway
from pointsman.settings import Settings

app = create_app(Settings(data_dir=Path(sys.argv[1])), billing=OpenAccessBilling())
with running_gateway(app):  # the lifespan loads and warms the neural scorer
    assert app.state.gateway.resolver.ranker is not None
    print("threads", torch.get_num_threads())
"""


def _env(tmp_path: Path, threads: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (VAR, "POINTSMAN_CONFIG_FILE")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no user config: the shipped neural scorer
    env["POINTSMAN_DATA_DIR"] = str(tmp_path / "data")
    env["OMP_NUM_THREADS"] = "4"  # torch's own default here, so only our setting can make it 1 or 3
    if threads is not None:
        env[VAR] = threads
    return env


def _threads(tmp_path: Path, code: str, threads: str | None) -> int:
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "data")],
        env=_env(tmp_path, threads),
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("threads ")][-1]
    return int(line.split()[1])


@pytest.mark.parametrize(("threads", "expected"), [(None, 1), ("3", 3)], ids=["default", "set"])
def test_route_gives_the_scorer_the_configured_threads(
    tmp_path: Path, threads: str | None, expected: int
) -> None:
    assert _threads(tmp_path, ROUTE, threads) == expected


def test_serve_gives_the_scorer_the_configured_threads(tmp_path: Path) -> None:
    assert _threads(tmp_path, SERVE, "3") == 3


@pytest.mark.parametrize("bad", ["0", "-2", "two", "1.5", ""])
@pytest.mark.parametrize("command", [["route", "hi"], ["serve", "--open-access", "--port", "1"]])
def test_a_bad_value_stops_the_command_with_the_fix(tmp_path: Path, command: list[str], bad: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from pointsman.cli import main; main()", *command],
        env=_env(tmp_path, bad),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    message = " ".join(done.stderr.split())
    assert f"{VAR}={bad!r} is not a whole number of threads >= 1" in message
    assert "set it to 1" in message
    assert "Traceback" not in done.stderr
