"""Stats: benchmark runs and latency samples (benchmarks and routed traffic).

Revision ID: 0002_stats
Revises: 0001_ledger
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pointsman.db import UTCDateTime

revision = "0002_stats"
down_revision = "0001_ledger"
branch_labels = None
depends_on = None

_big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bench_runs",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("endpoints", sa.Integer(), nullable=False),
        sa.Column("planned_requests", sa.Integer(), nullable=False),
        sa.Column("estimate_usd", sa.String(40), nullable=False),
        sa.Column("budget_usd", sa.String(40), nullable=True),
        sa.Column("cost_usd", sa.String(40), nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bench_runs")),
    )
    op.create_index("ix_bench_runs_region_started_at", "bench_runs", ["region", "started_at"])
    op.create_table(
        "latency_samples",
        sa.Column("id", _big_id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("prompt", sa.String(16), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("itl_ms", sa.Float(), nullable=True),
        sa.Column("itl_p90_ms", sa.Float(), nullable=True),
        sa.Column("tokens_per_s", sa.Float(), nullable=True),
        sa.Column("input_tokens", sa.Integer(), nullable=True),
        sa.Column("output_tokens", sa.Integer(), nullable=True),
        sa.Column("usage_reported", sa.Boolean(), nullable=False),
        sa.Column("cost_usd", sa.String(40), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_latency_samples")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["bench_runs.id"], name=op.f("fk_latency_samples_run_id_bench_runs")
        ),
    )
    op.create_index(op.f("ix_latency_samples_run_id"), "latency_samples", ["run_id"])
    op.create_index("ix_latency_samples_endpoint_created_at", "latency_samples", ["endpoint", "created_at"])
    op.create_index("ix_latency_samples_created_at", "latency_samples", ["created_at"])


def downgrade() -> None:
    op.drop_table("latency_samples")
    op.drop_table("bench_runs")
