"""Alembic migrations for every Pointsman table (applied by ``pointsman.db.upgrade``)."""
