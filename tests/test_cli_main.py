"""The console entry point: usage errors and Pointsman errors end in a message and exit code 2, not a traceback."""

from __future__ import annotations

import subprocess
import sys

ENTRY = "import sys; from pointsman.cli import main; sys.argv[0] = 'pointsman'; main()"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", ENTRY, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_unknown_option_is_a_usage_error() -> None:
    result = run_cli("route", "hi", "--bogus")
    assert result.returncode == 2
    assert "No such option: --bogus" in result.stderr
    assert "Traceback" not in result.stderr


def test_pointsman_error_is_one_message() -> None:
    result = run_cli("route", "hi", "--router", "router@q:1|c:")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "expected: a weight" in result.stderr
    assert "Traceback" not in result.stderr
