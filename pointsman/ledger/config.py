"""The ledger's settings, read from ``POINTSMAN_LEDGER_*`` environment variables."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LedgerConfig"]


class LedgerConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POINTSMAN_LEDGER_", extra="forbid")

    signup_credit_usd: Decimal = Field(
        default=Decimal(50), ge=0, description="Free credit granted to every new account (a ledger entry)."
    )
    reservation_ttl_s: float = Field(
        default=900.0,
        gt=0,
        description="How long a reservation may stay open before the sweeper returns it; longer than any request.",
    )
    sweep_interval_s: float = Field(default=30.0, gt=0, description="How often the gateway runs the sweeper.")
