"""What the console keeps for the life of the gateway: its settings, the database it reads the stats tables
from, and the parsed evaluation reports. Built in the gateway's lifespan by ``mount_console``; never at import.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pointsman.console.reports import ReportCache, find_reports
from pointsman.console.settings import ConsoleSettings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from pointsman.config import Config
    from pointsman.gateway.dependencies import GatewayState
    from pointsman.settings import Settings

__all__ = ["ConsoleContext", "console_settings_from"]


def console_settings_from(config: Config) -> ConsoleSettings:
    """``[console]`` from the config file (relative report paths are relative to the file), with
    ``POINTSMAN_CONSOLE_*`` environment variables taking precedence."""
    import os

    section = config.section("console", ConsoleSettings)
    from_file = {
        name: getattr(section, name)
        for name in section.model_fields_set
        if f"POINTSMAN_CONSOLE_{name.upper()}" not in os.environ
    }
    if "reports" in from_file and config.path is not None:
        base = config.path.parent
        from_file["reports"] = [p if p.is_absolute() else base / p for p in from_file["reports"]]
    return ConsoleSettings(**from_file)


@dataclass
class ConsoleContext:
    settings: ConsoleSettings
    data_dir: Path
    engine: Engine | None  # where the stats tables live; None when the gateway has no database
    owns_engine: bool = False
    reports: ReportCache = field(default_factory=ReportCache)

    @classmethod
    def build(cls, settings: Settings, config: Config, state: GatewayState) -> ConsoleContext:
        """Share the ledger's database when the gateway has one; in open access, open the configured database
        only if it exists (``POINTSMAN_DATABASE_URL``, or the SQLite file benchmarks were written to)."""
        from pointsman.ledger.billing import LedgerBilling

        engine: Engine | None = None
        owns = False
        if isinstance(state.billing, LedgerBilling):
            engine = state.billing.ledger.engine
        elif settings.database_url or (settings.data_dir / "pointsman.db").exists():
            from pointsman.db import create_db_engine

            engine, owns = create_db_engine(settings=settings), True
        return cls(console_settings_from(config), settings.data_dir, engine, owns)

    def report_paths(self) -> list[Path]:
        return find_reports(self.settings.reports, self.data_dir)

    def close(self) -> None:
        if self.owns_engine and self.engine is not None:
            self.engine.dispose()
