"""Test-wide isolation: no test reads or writes the user's own Pointsman data or config.

Every test session gets a fresh data directory (SQLite database, custom routers, caches) and an empty config
home, unless the caller set POINTSMAN_DATA_DIR on purpose. Subprocesses started by tests inherit both.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_pointsman_home() -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in ("POINTSMAN_DATA_DIR", "XDG_CONFIG_HOME", "POINTSMAN_CONFIG_FILE")}
    with tempfile.TemporaryDirectory(prefix="pointsman-tests-") as home:
        os.environ.setdefault("POINTSMAN_DATA_DIR", os.path.join(home, "data"))
        os.environ["XDG_CONFIG_HOME"] = os.path.join(home, "config")
        os.environ.pop("POINTSMAN_CONFIG_FILE", None)
        yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
