"""The stats tables: benchmark runs and latency samples (from benchmarks and from routed traffic).

A sample is one streamed request. ``ok`` is False for anything that did not yield a usable latency (an error,
a timeout, a stream without tokens); its ``error`` says which. Failed samples are kept, so a provider that fails
every time is visible in ``pointsman bench show``, but only ``ok`` samples feed the rolling figures.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pointsman.db import Base, UTCDateTime

__all__ = ["BenchRun", "LatencySample"]

BigId = BigInteger().with_variant(Integer(), "sqlite")


class BenchRun(Base):
    """One ``pointsman bench run`` (or one scheduled run): where it ran, what it planned and what it cost."""

    __tablename__ = "bench_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    region: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # running, done, failed
    endpoints: Mapped[int] = mapped_column(Integer)
    planned_requests: Mapped[int] = mapped_column(Integer)
    estimate_usd: Mapped[str] = mapped_column(String(40))  # Decimal as text: exact on every backend
    budget_usd: Mapped[str | None] = mapped_column(String(40), nullable=True)
    cost_usd: Mapped[str | None] = mapped_column(String(40), nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)

    __table_args__ = (Index("ix_bench_runs_region_started_at", "region", "started_at"),)


class LatencySample(Base):
    """One streamed request's timings, tokens and cost, from a benchmark run or from routed traffic."""

    __tablename__ = "latency_samples"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("bench_runs.id"), nullable=True, index=True)
    source: Mapped[str] = mapped_column(String(16))  # benchmark, traffic
    endpoint: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(64))
    prompt: Mapped[str | None] = mapped_column(String(16), nullable=True)  # short, long (benchmarks)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    ttft_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    itl_ms: Mapped[float | None] = mapped_column(Float, nullable=True)  # mean gap between streamed tokens
    itl_p90_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    tokens_per_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    input_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    usage_reported: Mapped[bool] = mapped_column(Boolean)
    cost_usd: Mapped[str | None] = mapped_column(String(40), nullable=True)
    duration_ms: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        Index("ix_latency_samples_endpoint_created_at", "endpoint", "created_at"),
        Index("ix_latency_samples_created_at", "created_at"),
    )
