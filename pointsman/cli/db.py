"""``pointsman db upgrade``: apply the database migrations (the gateway also does this on start)."""

from __future__ import annotations

import typer

__all__ = ["register"]

db_app = typer.Typer(
    help="The database: SQLite under the data dir, or POINTSMAN_DATABASE_URL.", no_args_is_help=True
)


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Create or migrate every table to the newest schema."""
    from rich.console import Console

    from pointsman.db import create_db_engine, current_revision, upgrade
    from pointsman.settings import Settings

    settings = Settings()
    engine = create_db_engine(settings=settings)
    try:
        before = current_revision(engine) if engine.dialect.name != "sqlite" or _exists(engine) else None
        upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    where = engine.url.render_as_string(hide_password=True)
    message = f"already at {after}" if before == after else f"migrated {before or 'empty'} -> {after}"
    Console().print(f"{where}: {message}", highlight=False, soft_wrap=True)


def _exists(engine: object) -> bool:
    from pathlib import Path

    database = getattr(getattr(engine, "url", None), "database", None)
    return bool(database) and Path(str(database)).exists()


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
