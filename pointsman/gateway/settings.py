"""The gateway's options: the ``[gateway]`` table of the config file, overridable by ``POINTSMAN_GATEWAY_*``
environment variables (e.g. ``POINTSMAN_GATEWAY_RETRIES=0``). Built once in the lifespan and injected with
``Depends(get_gateway_settings)``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from pointsman.providers.base import Timeouts

__all__ = ["GatewaySettings"]


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POINTSMAN_GATEWAY_", extra="forbid", frozen=True)

    billing: str = Field(
        default="ledger",
        description="Billing backend: 'ledger' (accounts and credit) or 'open' (no accounts; tests and demos).",
    )
    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    max_tokens_cap: int = Field(
        default=1_000_000, gt=0, description="A max_tokens above this is rejected as a mistake."
    )
    default_max_output_tokens: int = Field(
        default=4096,
        gt=0,
        description="Output tokens to reserve credit for when a request sets no max_tokens.",
    )
    fallback_depth: int = Field(default=3, ge=1, description="How many ranked endpoints to try.")
    retries: int = Field(default=1, ge=0, description="Retries of one endpoint before falling back.")
    backoff_base_s: float = Field(default=0.25, ge=0)
    backoff_max_s: float = Field(default=8.0, ge=0)
    max_retry_after_s: float = Field(
        default=30.0,
        ge=0,
        description="A longer Retry-After moves on to the next endpoint instead of waiting.",
    )
    connect_timeout_s: float = Field(default=5.0, gt=0)
    first_token_timeout_s: float = Field(default=30.0, gt=0)
    idle_timeout_s: float = Field(default=60.0, gt=0, description="Longest silence mid-stream.")
    total_timeout_s: float = Field(default=600.0, gt=0)
    breaker_failures: int = Field(default=5, ge=1, description="Consecutive failures that open the breaker.")
    breaker_cooldown_s: float = Field(default=30.0, ge=0)
    breaker_sync_s: float = Field(
        default=0.5, gt=0, description="With POINTSMAN_REDIS_URL: how often replicas exchange breaker state."
    )
    scorer_threads: int = Field(
        default=2, ge=1, description="Threads that run the scorer off the event loop."
    )
    max_connections: int = Field(default=1000, ge=1, description="Upstream connection pool size.")
    log_prompts: bool = Field(
        default=False, description="Log request bodies at DEBUG (off: prompts stay private)."
    )

    def timeouts(self) -> Timeouts:
        return Timeouts(
            connect_s=self.connect_timeout_s,
            first_token_s=self.first_token_timeout_s,
            idle_s=self.idle_timeout_s,
            total_s=self.total_timeout_s,
        )
