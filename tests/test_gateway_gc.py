"""`pointsman serve` freezes what startup built out of the garbage collector's reach (full collections under 64
streams paused every stream for 57-121 ms before); an app embedded in another process leaves its collector alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CODE = """
import gc, sys
from fastapi.testclient import TestClient
from pointsman.gateway.app import create_app
from pointsman.gateway.billing import OpenAccessBilling
from pointsman.gateway.settings import GatewaySettings
from pointsman.settings import Settings

freeze = sys.argv[1] == "freeze"
app = create_app(
    Settings(), gateway_settings=GatewaySettings(), billing=OpenAccessBilling(), freeze_gc=freeze
)
assert gc.get_freeze_count() == 0
with TestClient(app) as client:
    assert client.get("/healthz").status_code == 200
    print(gc.get_freeze_count())
"""


@pytest.mark.parametrize(("mode", "frozen"), [("freeze", True), ("embedded", False)])
def test_startup_freezes_the_collector_only_when_asked(tmp_path: Path, mode: str, frozen: bool) -> None:
    # A subprocess: freezing is process-wide and must not leak into the test runner.
    env = {"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(tmp_path), "POINTSMAN_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", CODE, mode], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    count = int(result.stdout.strip().splitlines()[-1])
    assert (count > 10_000) is frozen, count
