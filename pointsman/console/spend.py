"""Read-only queries for the Spend and Router panels: one account's balance, spend by model and by day, its
recent requests and the share of its traffic each endpoint served — all from the ledger's tables.

Only settled requests count (what was actually charged). A request's latency is the time from its reservation
(taken just before the gateway went upstream) to its settlement (after the last token), so it is the whole
upstream time as the gateway saw it. The ledger never stores prompts, so nothing here can show one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import cast

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.engine import Connection

from pointsman.ledger.ledger import Ledger
from pointsman.ledger.models import EntryKind, LedgerEntry, Reservation

__all__ = ["RecentRequest", "SpendView", "read_spend"]

entries = cast(Table, LedgerEntry.__table__)
reservations = cast(Table, Reservation.__table__)


@dataclass(frozen=True)
class RecentRequest:
    at: datetime
    endpoint: str
    input_tokens: int
    output_tokens: int
    cost_pico: int
    latency_s: float | None  # reservation → settlement; None when the reservation row is missing


@dataclass(frozen=True)
class SpendView:
    account_id: int
    account_name: str
    balance_pico: int
    granted_pico: int
    topped_up_pico: int
    spent_pico: int
    held_pico: int
    by_model: list[tuple[str, int, int]]  # (model, picodollars, requests), dearest first
    by_day: list[tuple[date, int, int]]  # (UTC day, picodollars, requests), oldest first, every day in range
    traffic: list[tuple[str, int]]  # (endpoint, settled requests), busiest first
    recent: list[RecentRequest]  # newest first

    @property
    def requests(self) -> int:
        return sum(n for _, n in self.traffic)


def read_spend(ledger: Ledger, account_id: int, *, days: int = 14, recent: int = 25) -> SpendView:
    """Everything the Spend panel shows for one account (read-only; a few small aggregate queries)."""
    account = ledger.account_by_id(account_id)
    totals = ledger.totals(account_id)
    today = ledger.now().date()
    first_day = today - timedelta(days=days - 1)
    settled = (entries.c.account_id == account_id, entries.c.kind == EntryKind.SETTLE)
    with _read(ledger.engine) as conn:
        per_endpoint = conn.execute(
            select(entries.c.endpoint, func.sum(entries.c.cost_pico), func.count())
            .where(*settled)
            .group_by(entries.c.endpoint)
        ).all()
        day = func.date(entries.c.created_at)
        per_day = conn.execute(
            select(day, func.sum(entries.c.cost_pico), func.count())
            .where(*settled, entries.c.created_at >= datetime.combine(first_day, time.min, tzinfo=UTC))
            .group_by(day)
        ).all()
        rows = conn.execute(
            select(
                entries.c.created_at,
                entries.c.endpoint,
                entries.c.input_tokens,
                entries.c.output_tokens,
                entries.c.cost_pico,
                reservations.c.created_at.label("reserved_at"),
            )
            .select_from(entries.outerjoin(reservations, reservations.c.id == entries.c.reservation_id))
            .where(*settled)
            .order_by(entries.c.id.desc())
            .limit(recent)
        ).all()
    by_model: dict[str, list[int]] = {}
    traffic: list[tuple[str, int]] = []
    for endpoint, pico, count in per_endpoint:
        name = endpoint or "unknown"
        model = name.rpartition("@")[0] or name
        acc = by_model.setdefault(model, [0, 0])
        acc[0] += int(pico or 0)
        acc[1] += int(count)
        traffic.append((name, int(count)))
    found = {_as_date(d): (int(pico or 0), int(count)) for d, pico, count in per_day}
    by_day = [(d, *found.get(d, (0, 0))) for d in (first_day + timedelta(days=i) for i in range(days))]
    return SpendView(
        account_id=account.id,
        account_name=account.name,
        balance_pico=account.balance_pico,
        granted_pico=totals["granted"],
        topped_up_pico=totals["topped_up"],
        spent_pico=totals["spent"],
        held_pico=totals["held"],
        by_model=sorted(((m, v[0], v[1]) for m, v in by_model.items()), key=lambda t: (-t[1], t[0])),
        by_day=by_day,
        traffic=sorted(traffic, key=lambda t: (-t[1], t[0])),
        recent=[
            RecentRequest(
                at=r.created_at,
                endpoint=r.endpoint or "unknown",
                input_tokens=int(r.input_tokens or 0),
                output_tokens=int(r.output_tokens or 0),
                cost_pico=int(r.cost_pico),
                latency_s=(r.created_at - r.reserved_at).total_seconds() if r.reserved_at else None,
            )
            for r in rows
        ],
    )


def _as_date(value: object) -> date:
    """``date(created_at)`` comes back as a date (PostgreSQL) or an ISO string (SQLite)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _read(engine: Engine) -> Connection:
    return engine.connect().execution_options(pointsman_read_only=True)
