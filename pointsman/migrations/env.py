"""Alembic environment: runs on the connection ``pointsman.db.upgrade`` passes in, or on the configured URL."""

from __future__ import annotations

from alembic import context

from pointsman.db import Base, create_db_engine, load_models

config = context.config
load_models()
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode rebuilds tables instead
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_db_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Pointsman's migrations run online only: use `pointsman db upgrade`")
run_migrations_online()
