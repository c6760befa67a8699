"""``[stats]``: how benchmarks, traffic telemetry and the rolling figures behave in the gateway and the CLI.

    [stats]
    region = "eu-west"          # tags every run and traffic sample from this deployment
    schedule = true             # run benchmarks inside `pointsman serve` every bench_interval_s
    bench_interval_s = 10800    # 3 hours
    statistic = "p90"           # or "median"

Environment variables ``POINTSMAN_STATS_*`` override the file (e.g. ``POINTSMAN_STATS_REGION=us-east``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from pointsman.config import Config

__all__ = ["StatsSettings", "load_stats_settings"]


class StatsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POINTSMAN_STATS_", extra="forbid", frozen=True)

    region: str = Field(
        default="default",
        min_length=1,
        max_length=64,
        description="Tags runs and samples, so deployments on several continents can share one store.",
    )
    # Rolling figures
    figures: bool = Field(default=True, description="Route on measured TTFT/ITL (False: catalogue priors).")
    statistic: Literal["p90", "median"] = Field(default="p90", description="The robust figure per endpoint.")
    window_s: float = Field(default=6 * 3600, gt=0, description="Only samples this recent count.")
    min_samples: int = Field(default=1, ge=1, description="Fewer usable samples in the window → prior.")
    max_samples: int = Field(
        default=500, ge=1, description="At most this many of the newest samples per endpoint count."
    )
    refresh_s: float = Field(default=30.0, ge=0, description="How long figures are cached between reads.")
    # Passive telemetry
    telemetry: bool = Field(default=True, description="Record TTFT/ITL of every routed stream.")
    telemetry_flush_s: float = Field(default=5.0, gt=0, description="How often traffic samples are written.")
    telemetry_buffer: int = Field(
        default=10_000, ge=1, description="Samples kept in memory between flushes (the oldest are dropped)."
    )
    # Scheduled benchmarks
    schedule: bool = Field(default=False, description="Run benchmarks inside `pointsman serve`.")
    bench_interval_s: float = Field(default=3 * 3600, gt=0, description="Time between scheduled runs.")
    bench_endpoints: list[str] | None = Field(
        default=None, description="Endpoints to benchmark (default: every enabled endpoint with a key)."
    )
    bench_repeats: int = Field(default=3, ge=1, description="Requests per endpoint and prompt.")
    bench_concurrency: int = Field(default=4, ge=1, description="Benchmark requests in flight at once.")
    bench_budget_usd: Decimal = Field(default=Decimal("1.00"), ge=0, description="Most one run may spend.")
    bench_max_tokens: int = Field(default=200, ge=1, description="Answer length asked of each request.")


def load_stats_settings(config: Config) -> StatsSettings:
    """``[stats]`` from the config file (errors name its file and line), then ``POINTSMAN_STATS_*`` on top."""
    from_file = config.section("stats", StatsSettings).model_dump(exclude_unset=True)
    from_env = StatsSettings()
    return StatsSettings(**{**from_file, **{k: getattr(from_env, k) for k in from_env.model_fields_set}})
