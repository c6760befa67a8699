"""Process-wide settings, read from the environment (``POINTSMAN_*``) and injected where needed.

Nothing reads these at import time: the CLI and the gateway's lifespan build one ``Settings`` and pass it down.
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_config_dir, user_data_dir
from pydantic import Field, field_validator
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
    redis_url: str | None = Field(
        default=None, description="Redis URL for limits and cooldowns shared by replicas."
    )
    scorer_torch_threads: int = Field(
        default=1,
        description="torch CPU threads for the neural scorer in 'pointsman serve' and 'pointsman route', set once "
        "when the scorer loads. torch.set_num_threads is process-wide: it applies to all torch work in the process.",
    )

    @field_validator("scorer_torch_threads", mode="before")
    @classmethod
    def _positive_threads(cls, value: object) -> int:
        # ConfigError is not a ValueError, so pydantic lets it through and the CLI prints it as one line.
        from pointsman.errors import ConfigError

        text = str(value).strip()
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            raise ConfigError(
                f"POINTSMAN_SCORER_TORCH_THREADS={value!r} is not a whole number of threads >= 1; set it to 1 (the "
                "default, best on small or shared hosts) or to the cores the scorer may use, or unset it"
            )
        return int(text)

    def resolved_config_file(self) -> Path | None:
        if self.config_file is not None:
            return self.config_file
        default = Path(user_config_dir("pointsman")) / "config.toml"
        return default if default.exists() else None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'pointsman.db'}"
