"""``[console]``: what the web console reads and shows.

    [console]
    reports = ["runs/eval-2026-11"]   # report.json files, or directories holding one (pointsman eval --out)
    window_hours = 168                 # default time range of the Endpoints charts
    spend_days = 14                    # days in the spend-by-day chart
    recent_requests = 25               # rows in the recent-requests table
    max_samples = 20000                # latency samples read per Endpoints page (the newest of the range)

Environment variables ``POINTSMAN_CONSOLE_*`` override the file (``POINTSMAN_CONSOLE_REPORTS='["a", "b"]'``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ConsoleSettings"]


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POINTSMAN_CONSOLE_", extra="forbid", frozen=True)

    reports: list[Path] = Field(
        default_factory=list,
        description="Evaluation reports (report.json, or the --out directory of `pointsman eval`); the newest "
        "of these and of <data dir>/reports/**/report.json and <data dir>/custom/**/report.json is shown.",
    )
    window_hours: float = Field(
        default=168, gt=0, le=24 * 366, description="Default range of latency charts."
    )
    spend_days: int = Field(default=14, ge=1, le=366, description="Days in the spend-by-day chart.")
    recent_requests: int = Field(default=25, ge=1, le=1000, description="Rows of recent requests shown.")
    max_samples: int = Field(
        default=20_000,
        ge=100,
        le=1_000_000,
        description="Latency samples read per Endpoints page (the newest of the range); more is slower.",
    )
