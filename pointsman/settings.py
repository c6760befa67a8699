"""Process-wide settings, read from the environment (``POINTSMAN_*``) and injected where needed.

Nothing reads these at import time: the CLI and the gateway's lifespan build one ``Settings`` and pass it down.
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_config_dir, user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POINTSMAN_", extra="forbid")

    data_dir: Path = Field(
        default_factory=lambda: Path(user_data_dir("pointsman")),
        description="Where the SQLite database, custom routers and caches live.",
    )
    config_file: Path | None = Field(
        default=None,
        description="A TOML config file (catalogue overrides, gateway options). "
        "Default: $XDG_CONFIG_HOME/pointsman/config.toml when it exists.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default is SQLite (WAL) at <data_dir>/pointsman.db."
    )
    redis_url: str | None = Field(default=None, description="Redis URL for limits and cooldowns shared by replicas.")

    def resolved_config_file(self) -> Path | None:
        if self.config_file is not None:
            return self.config_file
        default = Path(user_config_dir("pointsman")) / "config.toml"
        return default if default.exists() else None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'pointsman.db'}"
