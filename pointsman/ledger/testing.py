"""Helpers for tests that need a real database: a throwaway PostgreSQL schema, dropped afterwards.

Used by Pointsman's own tests (and any part that adds tables through ``pointsman.db``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from sqlalchemy import create_engine, text

__all__ = ["DEFAULT_TEST_POSTGRES_URL", "postgres_available", "temporary_postgres_schema"]

DEFAULT_TEST_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_available(url: str = DEFAULT_TEST_POSTGRES_URL) -> str | None:
    """None when the server at ``url`` answers, else the reason it does not (for ``pytest.skip``)."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any failure to connect is a reason to skip, reported verbatim
        return f"PostgreSQL at {url} is not reachable ({type(exc).__name__}: {exc})"
    return None


@contextmanager
def temporary_postgres_schema(url: str = DEFAULT_TEST_POSTGRES_URL) -> Iterator[str]:
    """A URL whose connections use a fresh, empty schema; the schema is dropped (CASCADE) on exit."""
    schema = f"pm_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
