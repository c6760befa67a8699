"""Benchmark runs and latency samples, stored through ``pointsman.db`` (SQLite by default, PostgreSQL when
``POINTSMAN_DATABASE_URL`` points at one, and then every gateway replica and benchmark runner shares them).

Samples are validated on the way in: a timing that is negative, NaN or infinite is stored as a failed sample
(``error="invalid measurement: ..."``) rather than as a figure, so one broken clock or provider cannot poison
the rolling figures.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Engine, Table, delete, func, insert, select, text, update
from sqlalchemy.engine import Connection

from pointsman.db import create_db_engine, upgrade, utcnow
from pointsman.errors import UnknownNameError
from pointsman.settings import Settings
from pointsman.stats.models import BenchRun, LatencySample

__all__ = ["SOURCES", "RunInfo", "Sample", "StatsStore"]

SOURCES = ("benchmark", "traffic")

runs_t = cast(Table, BenchRun.__table__)
samples_t = cast(Table, LatencySample.__table__)

_TIMINGS = ("ttft_ms", "itl_ms", "itl_p90_ms", "tokens_per_s", "duration_ms")


@dataclass(frozen=True)
class Sample:
    """One streamed request. ``ok`` samples have a ``ttft_ms``; failed ones say why in ``error``."""

    endpoint: str
    source: str
    ok: bool
    region: str = "default"
    created_at: datetime = field(default_factory=utcnow)
    run_id: str | None = None
    prompt: str | None = None
    error: str | None = None
    ttft_ms: float | None = None
    itl_ms: float | None = None
    itl_p90_ms: float | None = None
    tokens_per_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    usage_reported: bool = False
    cost_usd: Decimal | None = None
    duration_ms: float | None = None

    def __post_init__(self) -> None:
        assert self.source in SOURCES, f"source must be one of {SOURCES}, got {self.source!r}"
        assert self.created_at.tzinfo is not None, "created_at must be timezone-aware"

    def checked(self) -> Sample:
        """This sample, or a failed copy when a timing is not a finite non-negative number or an ok sample
        has no TTFT (bad data is kept as such, never as a figure)."""
        if not self.ok:
            return self
        for name in _TIMINGS:
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                return replace(self, ok=False, error=f"invalid measurement: {name}={value!r}", **_cleared())
        if self.ttft_ms is None:
            return replace(self, ok=False, error="invalid measurement: no ttft_ms")
        return self


def _cleared() -> dict[str, Any]:
    return dict.fromkeys(_TIMINGS)


@dataclass(frozen=True)
class RunInfo:
    id: str
    region: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    endpoints: int
    planned_requests: int
    estimate_usd: Decimal
    budget_usd: Decimal | None
    cost_usd: Decimal | None
    note: str | None


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _run(row: Any) -> RunInfo:
    return RunInfo(
        id=row.id,
        region=row.region,
        started_at=row.started_at,
        finished_at=row.finished_at,
        status=row.status,
        endpoints=row.endpoints,
        planned_requests=row.planned_requests,
        estimate_usd=Decimal(row.estimate_usd),
        budget_usd=_decimal(row.budget_usd),
        cost_usd=_decimal(row.cost_usd),
        note=row.note,
    )


def _sample(row: Any) -> Sample:
    return Sample(
        endpoint=row.endpoint,
        source=row.source,
        ok=row.ok,
        region=row.region,
        created_at=row.created_at,
        run_id=row.run_id,
        prompt=row.prompt,
        error=row.error,
        ttft_ms=row.ttft_ms,
        itl_ms=row.itl_ms,
        itl_p90_ms=row.itl_p90_ms,
        tokens_per_s=row.tokens_per_s,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        usage_reported=row.usage_reported,
        cost_usd=_decimal(row.cost_usd),
        duration_ms=row.duration_ms,
    )


def _row(sample: Sample) -> dict[str, Any]:
    s = sample.checked()
    return {
        "run_id": s.run_id,
        "source": s.source,
        "endpoint": s.endpoint,
        "region": s.region,
        "prompt": s.prompt,
        "created_at": s.created_at,
        "ok": s.ok,
        "error": None if s.error is None else s.error[:300],
        "ttft_ms": s.ttft_ms,
        "itl_ms": s.itl_ms,
        "itl_p90_ms": s.itl_p90_ms,
        "tokens_per_s": s.tokens_per_s,
        "input_tokens": s.input_tokens,
        "output_tokens": s.output_tokens,
        "usage_reported": s.usage_reported,
        "cost_usd": None if s.cost_usd is None else str(s.cost_usd),
        "duration_ms": s.duration_ms,
    }


class StatsStore:
    """Runs and samples on one engine. Synchronous (SQLAlchemy); async callers use a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, settings: Settings | None = None, *, migrate: bool = True) -> StatsStore:
        """The store on the configured database, migrated to the newest schema unless ``migrate`` is False."""
        engine = create_db_engine(settings=settings or Settings())
        if migrate:
            upgrade(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def _read(self) -> Connection:
        return self.engine.connect().execution_options(pointsman_read_only=True)

    # ---- runs -------------------------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        region: str,
        endpoints: int,
        planned_requests: int,
        estimate_usd: Decimal,
        budget_usd: Decimal | None,
        started_at: datetime | None = None,
    ) -> RunInfo:
        """Record a new run (status ``running``)."""
        found = self._insert_run(
            region, endpoints, planned_requests, estimate_usd, budget_usd, started_at, None
        )
        assert found is not None
        return found

    def claim_run(
        self,
        *,
        region: str,
        endpoints: int,
        planned_requests: int,
        estimate_usd: Decimal,
        budget_usd: Decimal | None,
        unless_started_within_s: float,
        started_at: datetime | None = None,
    ) -> RunInfo | None:
        """Record a new run only when no run of ``region`` started in the last ``unless_started_within_s``
        seconds, atomically across processes (SQLite's write lock, or a PostgreSQL advisory lock per region):
        of several schedulers that find a run due at once, one gets it and the others get None."""
        return self._insert_run(
            region, endpoints, planned_requests, estimate_usd, budget_usd, started_at, unless_started_within_s
        )

    def _insert_run(
        self,
        region: str,
        endpoints: int,
        planned_requests: int,
        estimate_usd: Decimal,
        budget_usd: Decimal | None,
        started_at: datetime | None,
        unless_started_within_s: float | None,
    ) -> RunInfo | None:
        run_id = uuid.uuid4().hex
        now = started_at or utcnow()
        values = {
            "id": run_id,
            "region": region,
            "started_at": now,
            "finished_at": None,
            "status": "running",
            "endpoints": endpoints,
            "planned_requests": planned_requests,
            "estimate_usd": str(estimate_usd),
            "budget_usd": None if budget_usd is None else str(budget_usd),
            "cost_usd": None,
            "note": None,
        }
        with self.engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite: the check and the insert are one step
            if unless_started_within_s is not None:
                if conn.dialect.name == "postgresql":
                    key = int.from_bytes(
                        hashlib.sha256(f"pointsman-bench:{region}".encode()).digest()[:8], "big"
                    )
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key - (1 << 63)})
                last = conn.execute(
                    select(func.max(runs_t.c.started_at)).where(runs_t.c.region == region)
                ).scalar()
                if last is not None and (now - last).total_seconds() < unless_started_within_s:
                    return None
            conn.execute(insert(runs_t).values(**values))
        return self.run(run_id)

    def finish_run(self, run_id: str, *, status: str, cost_usd: Decimal, note: str | None = None) -> RunInfo:
        with self.engine.begin() as conn:
            done = conn.execute(
                update(runs_t)
                .where(runs_t.c.id == run_id)
                .values(
                    status=status,
                    finished_at=utcnow(),
                    cost_usd=str(cost_usd),
                    note=None if note is None else note[:500],
                )
            )
        if done.rowcount == 0:
            raise UnknownNameError("benchmark run", run_id, [])
        return self.run(run_id)

    def run(self, run_id: str) -> RunInfo:
        with self._read() as conn:
            row = conn.execute(select(runs_t).where(runs_t.c.id == run_id)).first()
        if row is None:
            raise UnknownNameError("benchmark run", run_id, [r.id for r in self.runs(limit=20)])
        return _run(row)

    def runs(self, *, region: str | None = None, limit: int = 20) -> list[RunInfo]:
        """The newest runs first."""
        query = select(runs_t).order_by(runs_t.c.started_at.desc()).limit(limit)
        if region is not None:
            query = query.where(runs_t.c.region == region)
        with self._read() as conn:
            return [_run(r) for r in conn.execute(query)]

    def last_run_started(self, region: str) -> datetime | None:
        """When the newest run of ``region`` started (any status), or None."""
        query = select(func.max(runs_t.c.started_at)).where(runs_t.c.region == region)
        with self._read() as conn:
            value: datetime | None = conn.execute(query).scalar_one_or_none()
        return value

    # ---- samples ----------------------------------------------------------------------------------------------

    def add_samples(self, samples: Iterable[Sample]) -> int:
        """Insert ``samples`` in one transaction; returns how many."""
        rows = [_row(s) for s in samples]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(samples_t), rows)
        return len(rows)

    def samples(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        endpoints: Sequence[str] | None = None,
        region: str | None = None,
        source: str | None = None,
        run_id: str | None = None,
        ok: bool | None = None,
    ) -> list[Sample]:
        """Samples matching every filter given, oldest first."""
        query = select(samples_t).order_by(samples_t.c.created_at, samples_t.c.id)
        conditions = [
            (since is not None, lambda: samples_t.c.created_at >= since),
            (until is not None, lambda: samples_t.c.created_at <= until),
            (endpoints is not None, lambda: samples_t.c.endpoint.in_(list(endpoints or ()))),
            (region is not None, lambda: samples_t.c.region == region),
            (source is not None, lambda: samples_t.c.source == source),
            (run_id is not None, lambda: samples_t.c.run_id == run_id),
            (ok is not None, lambda: samples_t.c.ok == ok),
        ]
        for wanted, condition in conditions:
            if wanted:
                query = query.where(condition())
        with self._read() as conn:
            return [_sample(r) for r in conn.execute(query)]

    def prune(self, before: datetime) -> int:
        """Delete samples older than ``before`` and the finished runs left without samples; returns the number
        of samples deleted."""
        with self.engine.begin() as conn:
            deleted = conn.execute(delete(samples_t).where(samples_t.c.created_at < before)).rowcount
            used = select(samples_t.c.run_id).where(samples_t.c.run_id.is_not(None)).distinct()
            conn.execute(
                delete(runs_t).where(
                    runs_t.c.started_at < before, runs_t.c.status != "running", runs_t.c.id.not_in(used)
                )
            )
        return int(deleted or 0)

    # ---- what the rolling figures read (three small queries per refresh) ---------------------------------------

    def recent_ok(
        self, *, since: datetime, per_group: int
    ) -> list[tuple[str, str, str, float, float | None]]:
        """The newest ``per_group`` usable samples since ``since`` of each (endpoint, region):
        ``(endpoint, region, source, ttft_ms, itl_ms)`` tuples."""
        newest_first = (
            func.row_number()
            .over(
                partition_by=(samples_t.c.endpoint, samples_t.c.region),
                order_by=(samples_t.c.created_at.desc(), samples_t.c.id.desc()),
            )
            .label("rank")
        )
        inner = (
            select(
                samples_t.c.endpoint,
                samples_t.c.region,
                samples_t.c.source,
                samples_t.c.ttft_ms,
                samples_t.c.itl_ms,
                newest_first,
            )
            .where(
                samples_t.c.created_at >= since, samples_t.c.ok.is_(True), samples_t.c.ttft_ms.is_not(None)
            )
            .subquery()
        )
        query = select(
            inner.c.endpoint, inner.c.region, inner.c.source, inner.c.ttft_ms, inner.c.itl_ms
        ).where(inner.c.rank <= per_group)
        with self._read() as conn:
            return [
                (r[0], r[1], r[2], float(r[3]), None if r[4] is None else float(r[4]))
                for r in conn.execute(query)
            ]

    def failures(self, *, since: datetime) -> dict[str, int]:
        """Failed samples per endpoint since ``since``."""
        query = (
            select(samples_t.c.endpoint, func.count())
            .where(samples_t.c.created_at >= since, samples_t.c.ok.is_(False))
            .group_by(samples_t.c.endpoint)
        )
        with self._read() as conn:
            return {r[0]: int(r[1]) for r in conn.execute(query)}

    def newest_ok(self) -> dict[str, datetime]:
        """When each endpoint's newest usable sample was taken (any age)."""
        query = (
            select(samples_t.c.endpoint, func.max(samples_t.c.created_at))
            .where(samples_t.c.ok.is_(True))
            .group_by(samples_t.c.endpoint)
        )
        with self._read() as conn:
            return {r[0]: r[1] for r in conn.execute(query)}
