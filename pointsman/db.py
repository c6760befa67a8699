"""The database layer: one engine per process, one declarative ``Base`` for every table, Alembic migrations.

SQLite (WAL) under the data directory is the embedded default; PostgreSQL when ``POINTSMAN_DATABASE_URL`` points
at one, and then any number of gateway replicas share it. Other parts add tables by declaring models on
:class:`Base` and adding a revision under ``pointsman/migrations/versions`` (``pointsman db upgrade`` or
:func:`upgrade` applies them; the gateway runs it on start).

Writes that must not interleave use :func:`write_transaction`. On SQLite every transaction this module's engines
open starts with ``BEGIN IMMEDIATE`` (the database's single writer lock is taken up front, so two writers queue on
``busy_timeout`` instead of failing with "database is locked" when a read lock cannot be upgraded); connections
opened with ``execution_options(pointsman_read_only=True)`` use a plain deferred ``BEGIN`` so reads do not queue
behind writers. On PostgreSQL transactions are READ COMMITTED and correctness comes from atomic conditional
``UPDATE ... WHERE balance >= :amount`` statements (see ``pointsman.ledger.ledger``).
"""

from __future__ import annotations

import importlib
import logging
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event, make_url, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from pointsman.errors import ConfigError
from pointsman.settings import Settings

__all__ = [
    "MODEL_MODULES",
    "Base",
    "UTCDateTime",
    "create_db_engine",
    "current_revision",
    "head_revision",
    "load_models",
    "session_factory",
    "upgrade",
    "utcnow",
    "write_transaction",
]

log = logging.getLogger(__name__)

# Stable constraint names, so batch migrations on SQLite can find and alter them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Modules that declare tables on Base; Alembic's env imports them so autogenerate sees every table.
# Add yours here together with a revision under pointsman/migrations/versions.
MODEL_MODULES: tuple[str, ...] = ("pointsman.ledger.models", "pointsman.stats.models")

# Any constant; held while migrations run so replicas starting together do not race to create tables.
_MIGRATION_LOCK_ID = 0x706F696E74736D61  # "pointsma"


class Base(DeclarativeBase):
    """The declarative base every Pointsman table derives from (one ``MetaData`` for all migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def load_models() -> None:
    """Import every module in ``MODEL_MODULES`` so their tables are on ``Base.metadata``."""
    for name in MODEL_MODULES:
        importlib.import_module(name)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as naive UTC on every backend and returned timezone-aware (UTC).

    SQLite has no time zones; storing naive UTC everywhere keeps comparisons in SQL correct on both backends.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column; pass a timezone-aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def _normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 (the driver Pointsman ships with)."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below emit BEGIN itself (the sqlite3 module's own is always DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("pointsman_read_only"):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_db_engine(
    url: str | None = None, *, settings: Settings | None = None, echo: bool = False
) -> Engine:
    """An engine for ``url``, or for ``Settings().resolved_database_url()`` when none is given.

    SQLite files get WAL, ``synchronous=NORMAL``, a 30 s busy timeout, foreign keys and ``BEGIN IMMEDIATE``;
    their parent directory is created. PostgreSQL gets a connection pool sized for a gateway replica.
    """
    if url is None:
        url = (settings or Settings()).resolved_database_url()
    url = _normalise_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"POINTSMAN_DATABASE_URL is not a database URL ({exc}); use e.g. "
            "postgresql://user@host:5432/dbname or sqlite:////path/to/pointsman.db"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, connect_args={"check_same_thread": False})
        _install_sqlite_hooks(engine)
        return engine
    if backend == "postgresql":
        return create_engine(parsed, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)
    raise ConfigError(
        f"unsupported database {backend!r} in POINTSMAN_DATABASE_URL; Pointsman supports sqlite and postgresql"
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine`` that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


# One lock per SQLite engine: threads of one process queue here in order instead of polling SQLite's
# busy handler (which sleeps up to 100 ms between tries and lets unlucky writers starve).
_sqlite_writers: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_sqlite_writers_guard = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock | None:
    if engine.dialect.name != "sqlite":
        return None
    with _sqlite_writers_guard:
        lock = _sqlite_writers.get(engine)
        if lock is None:
            lock = _sqlite_writers[engine] = threading.Lock()
        return lock


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that takes the write lock up front on SQLite; commits on success.

    On SQLite, threads of this process also queue on an in-process lock first (other processes still wait on
    the busy timeout)."""
    lock = _writer_lock(engine)
    if lock is None:
        with engine.begin() as conn:
            yield conn
        return
    with lock, engine.begin() as conn:
        yield conn


def _alembic_config() -> Any:
    from alembic.config import Config

    script_location = resources.files("pointsman") / "migrations"
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``. Safe to call from several processes at once."""
    from alembic import command

    cfg = _alembic_config()
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except OperationalError as exc:
        raise ConfigError(
            f"cannot migrate the database at {engine.url.render_as_string(hide_password=True)}: {exc.orig}; "
            "check POINTSMAN_DATABASE_URL (or POINTSMAN_DATA_DIR for the default SQLite file) and that the "
            "server is running"
        ) from exc


def head_revision() -> str:
    """The newest migration revision shipped with this version of Pointsman."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "pointsman/migrations/versions holds no revision"
    return head


def current_revision(engine: Engine) -> str | None:
    """The migration revision the database is at, or None for an empty database."""
    from alembic.migration import MigrationContext

    with engine.connect().execution_options(pointsman_read_only=True) as conn:
        return MigrationContext.configure(conn).get_current_revision()
