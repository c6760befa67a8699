"""The ledger's settings: the config file's ``[ledger]`` table, overridden by ``POINTSMAN_LEDGER_*`` environment
variables."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from pointsman.config import Config

__all__ = ["LedgerConfig", "ledger_config_from"]


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


def ledger_config_from(config: Config | None) -> LedgerConfig:
    """``[ledger]`` from the config file, with ``POINTSMAN_LEDGER_*`` environment variables taking precedence."""
    if config is None:
        return LedgerConfig()
    section = config.section("ledger", LedgerConfig)
    from_file = {
        name: getattr(section, name)
        for name in section.model_fields_set
        if f"POINTSMAN_LEDGER_{name.upper()}" not in os.environ
    }
    return LedgerConfig(**from_file)
