"""The ledger: grants, top-ups, reservations, settlements, releases and expiries as append-only entries.

Every operation is one database transaction that writes its ledger entry and moves the cached available balance
(``accounts.balance_pico``) by the entry's amount, so ``balance = SUM(entries.amount_pico)`` always holds, and
equivalently ``balance = grants + top-ups - settled costs - open reservations``.

How overspending is made impossible: a reservation takes its hold with one atomic conditional statement,
``UPDATE accounts SET balance_pico = balance_pico - :hold WHERE id = :id AND balance_pico >= :hold``. On
PostgreSQL (READ COMMITTED) a concurrent UPDATE of the same row waits for the first to commit and then re-checks
the WHERE clause against the new balance, so two replicas can never both spend the same credit; no row is read
and then written from Python. On SQLite every write transaction starts with BEGIN IMMEDIATE (see
``pointsman.db``), so writers are serialised by the database's write lock. Reservation state changes are
conditional too (``... WHERE status = 'open'``), so a reservation is settled, released or expired exactly once.

Lock order, to keep PostgreSQL free of deadlocks: reservation row, then API key row, then account row.
"""

from __future__ import annotations

import calendar
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Engine, Table, case, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, NoResultFound

from pointsman.db import create_db_engine, upgrade, utcnow, write_transaction
from pointsman.errors import InsufficientCreditError, InvalidRequestError, RateLimitError, UnknownNameError
from pointsman.ledger.config import LedgerConfig, ledger_config_from
from pointsman.ledger.models import Account, ApiKey, EntryKind, LedgerEntry, Reservation, ReservationStatus
from pointsman.ledger.money import Price, format_usd, request_cost_pico, usd_to_pico
from pointsman.settings import Settings

__all__ = ["BUDGET_PERIODS", "AccountInfo", "Charge", "EntryView", "Hold", "Ledger", "period_start"]

log = logging.getLogger(__name__)

accounts = cast(Table, Account.__table__)
api_keys = cast(Table, ApiKey.__table__)
reservations = cast(Table, Reservation.__table__)
entries = cast(Table, LedgerEntry.__table__)

BUDGET_PERIODS = ("day", "week", "month")


@dataclass(frozen=True, slots=True)
class AccountInfo:
    id: int
    name: str
    balance_pico: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Hold:
    """Credit held for one request until it is settled, released or expires."""

    reservation_id: str
    account_id: int
    amount_pico: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Charge:
    """The exact charge for one request. ``late``: the hold had already been returned (released or expired)."""

    reservation_id: str
    cost_pico: int
    amount_pico: int
    late: bool


@dataclass(frozen=True, slots=True)
class EntryView:
    id: int
    kind: str
    amount_pico: int
    cost_pico: int
    reservation_id: str | None
    request_id: str | None
    endpoint: str | None
    input_tokens: int | None
    output_tokens: int | None
    input_usd_per_mtok: str | None
    output_usd_per_mtok: str | None
    note: str | None
    created_at: datetime


def period_start(period: str, now: datetime) -> datetime:
    """The start (UTC midnight) of the calendar ``period`` ("day", "week" from Monday, "month") holding ``now``."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise InvalidRequestError(f"unknown budget period {period!r}; use one of {', '.join(BUDGET_PERIODS)}")


def _period_end(period: str, start: datetime) -> datetime:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return start + timedelta(days=calendar.monthrange(start.year, start.month)[1])


class Ledger:
    """Accounts and their money. Thread-safe: each call is its own transaction on ``engine``."""

    def __init__(
        self,
        engine: Engine,
        *,
        config: LedgerConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.config = config or LedgerConfig()
        self._clock = clock

    @classmethod
    def open(cls, settings: Settings | None = None, *, migrate: bool = True) -> Ledger:
        """The ledger on the configured database (``POINTSMAN_DATABASE_URL`` or SQLite under the data dir) with
        the config file's ``[ledger]`` settings, migrated to the newest schema unless ``migrate`` is False."""
        from pointsman.config import load_config

        settings = settings or Settings()
        engine = create_db_engine(settings=settings)
        if migrate:
            upgrade(engine)
        return cls(engine, config=ledger_config_from(load_config(settings.resolved_config_file())))

    def close(self) -> None:
        self.engine.dispose()

    def now(self) -> datetime:
        """The ledger's clock (timezone-aware UTC); tests pass their own."""
        return self._clock()

    # ---- accounts -------------------------------------------------------------------------------------------

    def create_account(self, name: str, *, grant_usd: Decimal | str | int | None = None) -> AccountInfo:
        """A new account with the signup grant (``grant_usd``, default the configured signup credit)."""
        account, created = self.ensure_account(name, grant_usd=grant_usd)
        if not created:
            raise InvalidRequestError(
                f"account {name!r} already exists; add credit with `pointsman credits top-up --account {name}`"
            )
        return account

    def ensure_account(
        self, name: str, *, grant_usd: Decimal | str | int | None = None
    ) -> tuple[AccountInfo, bool]:
        """The account called ``name``, creating it (with its signup grant) when missing; and whether it was."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidRequestError("an account name must be 1 to 200 characters", param="account")
        grant = usd_to_pico(self.config.signup_credit_usd if grant_usd is None else grant_usd, what="credit")
        if grant < 0:
            raise InvalidRequestError("signup credit cannot be negative", param="credit")
        now = self._clock()
        try:
            with write_transaction(self.engine) as conn:
                account_id = conn.execute(
                    insert(accounts)
                    .values(name=name, balance_pico=0, created_at=now)
                    .returning(accounts.c.id)
                ).scalar_one()
                if grant:
                    self._credit(conn, account_id, EntryKind.GRANT, grant, note="signup credit")
        except IntegrityError:
            return self.account(name), False
        return self.account_by_id(account_id), True

    def account(self, name: str) -> AccountInfo:
        with self._read() as conn:
            row = conn.execute(select(accounts).where(accounts.c.name == name)).first()
            if row is None:
                known = conn.execute(select(accounts.c.name).limit(1000)).scalars().all()
                raise UnknownNameError("account", name, known, param="account")
        return AccountInfo(row.id, row.name, row.balance_pico, row.created_at)

    def account_by_id(self, account_id: int) -> AccountInfo:
        with self._read() as conn:
            row = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
        if row is None:
            raise UnknownNameError("account id", str(account_id), [], param="account")
        return AccountInfo(row.id, row.name, row.balance_pico, row.created_at)

    def accounts(self) -> list[AccountInfo]:
        with self._read() as conn:
            rows = conn.execute(select(accounts).order_by(accounts.c.id)).all()
        return [AccountInfo(r.id, r.name, r.balance_pico, r.created_at) for r in rows]

    # ---- credit in ------------------------------------------------------------------------------------------

    def grant(self, account_id: int, usd: Decimal | str | int, *, note: str | None = None) -> int:
        """Free credit; returns the new available balance in picodollars."""
        return self._add_credit(account_id, EntryKind.GRANT, usd, note)

    def top_up(self, account_id: int, usd: Decimal | str | int, *, note: str | None = None) -> int:
        """Paid credit; returns the new available balance in picodollars."""
        return self._add_credit(account_id, EntryKind.TOP_UP, usd, note)

    def _add_credit(self, account_id: int, kind: str, usd: Decimal | str | int, note: str | None) -> int:
        amount = usd_to_pico(usd)
        if amount <= 0:
            raise InvalidRequestError(
                f"a {kind.replace('_', '-')} must be a positive amount of USD, got {usd}"
            )
        with write_transaction(self.engine) as conn:
            return self._credit(conn, account_id, kind, amount, note=note)

    # ---- one request ------------------------------------------------------------------------------------------

    def reserve(
        self,
        account_id: int,
        *,
        prices: Price | Sequence[Price],
        input_tokens: int,
        max_output_tokens: int,
        api_key_id: int | None = None,
        request_id: str | None = None,
        endpoint: str | None = None,
        ttl_s: float | None = None,
    ) -> Hold:
        """Hold the most this request can cost: the dearest of ``prices`` (every endpoint a fallback may reach)
        for ``input_tokens`` in and ``max_output_tokens`` out.

        Raises InsufficientCreditError (402) when the balance cannot cover it, RateLimitError (429) when the key's
        budget for the period cannot.
        """
        if input_tokens < 0 or max_output_tokens < 0:
            raise InvalidRequestError("token counts must be >= 0")
        price_list = [prices] if isinstance(prices, Price) else list(prices)
        if not price_list:
            raise InvalidRequestError("reserve needs the price of at least one endpoint")
        amount, dearest = max(
            ((request_cost_pico(p, input_tokens, max_output_tokens), p) for p in price_list),
            key=lambda cp: cp[0],
        )
        now = self._clock()
        expires_at = now + timedelta(seconds=self.config.reservation_ttl_s if ttl_s is None else ttl_s)
        reservation_id = uuid.uuid4().hex
        with write_transaction(self.engine) as conn:
            budget_start = (
                self._hold_budget(conn, api_key_id, amount, now) if api_key_id is not None else None
            )
            taken = conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id, accounts.c.balance_pico >= amount)
                .values(balance_pico=accounts.c.balance_pico - amount)
            )
            if taken.rowcount != 1:
                balance = conn.execute(
                    select(accounts.c.balance_pico).where(accounts.c.id == account_id)
                ).scalar_one_or_none()
                if balance is None:
                    raise UnknownNameError("account id", str(account_id), [], param="account")
                raise InsufficientCreditError(
                    f"insufficient credit: this request may cost up to {format_usd(amount)} "
                    f"({input_tokens} input + {max_output_tokens} max output tokens) but the available balance "
                    f"is {format_usd(balance)}; top up (`pointsman credits top-up`) or lower max_tokens"
                )
            conn.execute(
                insert(reservations).values(
                    id=reservation_id,
                    account_id=account_id,
                    api_key_id=api_key_id,
                    request_id=request_id,
                    endpoint=endpoint,
                    amount_pico=amount,
                    status=ReservationStatus.OPEN,
                    created_at=now,
                    expires_at=expires_at,
                    budget_period_start=budget_start,
                )
            )
            self._entry(
                conn,
                account_id,
                EntryKind.RESERVE,
                -amount,
                reservation_id=reservation_id,
                api_key_id=api_key_id,
                request_id=request_id,
                endpoint=endpoint,
                input_tokens=input_tokens,
                output_tokens=max_output_tokens,
                price=dearest,
            )
        return Hold(reservation_id, account_id, amount, expires_at)

    def settle(
        self,
        reservation_id: str,
        *,
        price: Price,
        input_tokens: int,
        output_tokens: int,
        endpoint: str | None = None,
    ) -> Charge | None:
        """Charge exactly ``price`` × the provider's reported tokens and return the hold.

        ``endpoint`` and ``price`` are the endpoint that answered (after a fallback, not the first one tried).
        A reservation already released or expired is still charged (the provider billed us), and is then
        marked settled. Settling twice returns None and charges nothing.
        """
        cost = request_cost_pico(price, input_tokens, output_tokens)
        now = self._clock()
        with write_transaction(self.engine) as conn:
            row = self._reservation(conn, reservation_id)
            closed = conn.execute(
                update(reservations)
                .where(reservations.c.id == reservation_id, reservations.c.status == ReservationStatus.OPEN)
                .values(status=ReservationStatus.SETTLED, closed_at=now, endpoint=endpoint or row.endpoint)
            )
            if closed.rowcount == 1:
                returned, late = row.amount_pico, False
            else:
                closed = conn.execute(
                    update(reservations)
                    .where(
                        reservations.c.id == reservation_id,
                        reservations.c.status.in_([ReservationStatus.RELEASED, ReservationStatus.EXPIRED]),
                    )
                    .values(
                        status=ReservationStatus.SETTLED, closed_at=now, endpoint=endpoint or row.endpoint
                    )
                )
                if closed.rowcount != 1:
                    log.warning("reservation %s was already settled; not charging it again", reservation_id)
                    return None
                returned, late = 0, True
                log.warning(
                    "settling reservation %s after its hold was returned (late settle)", reservation_id
                )
            if cost > returned and not late:
                log.warning(
                    "reservation %s: reported usage costs %s, more than the %s held; charging the exact cost",
                    reservation_id,
                    format_usd(cost),
                    format_usd(returned),
                )
            self._adjust_budget(conn, row, cost - returned)
            amount = returned - cost
            self._move_balance(conn, row.account_id, amount)
            self._entry(
                conn,
                row.account_id,
                EntryKind.SETTLE,
                amount,
                cost_pico=cost,
                reservation_id=reservation_id,
                api_key_id=row.api_key_id,
                request_id=row.request_id,
                endpoint=endpoint or row.endpoint,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                price=price,
                note="late: hold had been returned" if late else None,
            )
        return Charge(reservation_id, cost, amount, late)

    def release(self, reservation_id: str, *, note: str | None = None) -> bool:
        """Return the whole hold (the request failed before any token was generated). False if not open."""
        return self._return_hold(reservation_id, EntryKind.RELEASE, ReservationStatus.RELEASED, note)

    def expire_stale(self, *, limit: int = 1000) -> int:
        """Return the holds of open reservations past their expiry (e.g. a gateway that died mid-request)."""
        now = self._clock()
        with self._read() as conn:
            stale = (
                conn.execute(
                    select(reservations.c.id)
                    .where(reservations.c.status == ReservationStatus.OPEN, reservations.c.expires_at < now)
                    .order_by(reservations.c.expires_at)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        expired = 0
        for reservation_id in stale:
            if self._return_hold(
                reservation_id, EntryKind.EXPIRE, ReservationStatus.EXPIRED, "expired unsettled"
            ):
                expired += 1
        if expired:
            log.warning("returned %d expired reservation(s) that no gateway settled", expired)
        return expired

    def _return_hold(self, reservation_id: str, kind: str, status: str, note: str | None) -> bool:
        now = self._clock()
        with write_transaction(self.engine) as conn:
            row = self._reservation(conn, reservation_id)
            closed = conn.execute(
                update(reservations)
                .where(reservations.c.id == reservation_id, reservations.c.status == ReservationStatus.OPEN)
                .values(status=status, closed_at=now)
            )
            if closed.rowcount != 1:
                return False
            self._adjust_budget(conn, row, -row.amount_pico)
            self._move_balance(conn, row.account_id, row.amount_pico)
            self._entry(
                conn,
                row.account_id,
                kind,
                row.amount_pico,
                reservation_id=reservation_id,
                api_key_id=row.api_key_id,
                request_id=row.request_id,
                endpoint=row.endpoint,
                note=note,
            )
        return True

    # ---- reading ----------------------------------------------------------------------------------------------

    def balance(self, account_id: int) -> int:
        """The available balance in picodollars (open reservations already taken out)."""
        return self.account_by_id(account_id).balance_pico

    def derived_balance(self, account_id: int) -> int:
        """The available balance recomputed from the ledger entries alone."""
        with self._read() as conn:
            total = conn.execute(
                select(func.coalesce(func.sum(entries.c.amount_pico), 0)).where(
                    entries.c.account_id == account_id
                )
            ).scalar_one()
        return int(total)

    def totals(self, account_id: int) -> dict[str, int]:
        """Picodollars by kind: granted, topped_up, spent (settled costs) and held (open reservations)."""
        with self._read() as conn:
            by_kind = dict(
                conn.execute(
                    select(entries.c.kind, func.sum(entries.c.amount_pico))
                    .where(
                        entries.c.account_id == account_id,
                        entries.c.kind.in_([EntryKind.GRANT, EntryKind.TOP_UP]),
                    )
                    .group_by(entries.c.kind)
                ).all()
            )
            spent = conn.execute(
                select(func.coalesce(func.sum(entries.c.cost_pico), 0)).where(
                    entries.c.account_id == account_id, entries.c.kind == EntryKind.SETTLE
                )
            ).scalar_one()
            held = conn.execute(
                select(func.coalesce(func.sum(reservations.c.amount_pico), 0)).where(
                    reservations.c.account_id == account_id, reservations.c.status == ReservationStatus.OPEN
                )
            ).scalar_one()
        return {
            "granted": int(by_kind.get(EntryKind.GRANT) or 0),
            "topped_up": int(by_kind.get(EntryKind.TOP_UP) or 0),
            "spent": int(spent),
            "held": int(held),
        }

    def spend_by_endpoint(self, account_id: int, *, since: datetime | None = None) -> dict[str, int]:
        """Settled cost in picodollars per endpoint (``model@provider``), dearest first."""
        query = (
            select(entries.c.endpoint, func.sum(entries.c.cost_pico))
            .where(entries.c.account_id == account_id, entries.c.kind == EntryKind.SETTLE)
            .group_by(entries.c.endpoint)
        )
        if since is not None:
            query = query.where(entries.c.created_at >= since)
        with self._read() as conn:
            rows = conn.execute(query).all()
        spend = {(endpoint or "unknown"): int(total) for endpoint, total in rows}
        return dict(sorted(spend.items(), key=lambda kv: (-kv[1], kv[0])))

    def history(self, account_id: int, *, limit: int = 50) -> list[EntryView]:
        """The newest ``limit`` entries, newest first."""
        with self._read() as conn:
            rows = conn.execute(
                select(entries)
                .where(entries.c.account_id == account_id)
                .order_by(entries.c.id.desc())
                .limit(limit)
            ).all()
        return [
            EntryView(
                r.id,
                r.kind,
                r.amount_pico,
                r.cost_pico,
                r.reservation_id,
                r.request_id,
                r.endpoint,
                r.input_tokens,
                r.output_tokens,
                r.input_usd_per_mtok,
                r.output_usd_per_mtok,
                r.note,
                r.created_at,
            )
            for r in rows
        ]

    def reservation_status(self, reservation_id: str) -> str:
        with self._read() as conn:
            return str(self._reservation(conn, reservation_id).status)

    def open_reservations(self, account_id: int | None = None) -> int:
        query = (
            select(func.count())
            .select_from(reservations)
            .where(reservations.c.status == ReservationStatus.OPEN)
        )
        if account_id is not None:
            query = query.where(reservations.c.account_id == account_id)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    # ---- internals --------------------------------------------------------------------------------------------

    def _read(self) -> Connection:
        return self.engine.connect().execution_options(pointsman_read_only=True)

    @staticmethod
    def _reservation(conn: Connection, reservation_id: str) -> Any:
        row = conn.execute(select(reservations).where(reservations.c.id == reservation_id)).first()
        if row is None:
            raise UnknownNameError("reservation", reservation_id, [])
        return row

    def _hold_budget(self, conn: Connection, api_key_id: int, amount: int, now: datetime) -> datetime | None:
        """Count ``amount`` against the key's budget for the current period; RateLimitError if it does not fit."""
        key = conn.execute(
            select(api_keys.c.budget_pico, api_keys.c.budget_period).where(api_keys.c.id == api_key_id)
        ).first()
        if key is None or key.budget_pico is None or key.budget_period is None:
            return None
        start = period_start(key.budget_period, now)
        used_now = case((api_keys.c.budget_period_start == start, api_keys.c.budget_used_pico), else_=0)
        counted = conn.execute(
            update(api_keys)
            .where(api_keys.c.id == api_key_id, used_now + amount <= api_keys.c.budget_pico)
            .values(budget_used_pico=used_now + amount, budget_period_start=start)
        )
        if counted.rowcount != 1:
            used = conn.execute(select(used_now).where(api_keys.c.id == api_key_id)).scalar_one()
            resets = _period_end(key.budget_period, start)
            raise RateLimitError(
                f"this API key's budget of {format_usd(key.budget_pico)} per {key.budget_period} cannot cover a "
                f"request that may cost up to {format_usd(amount)} ({format_usd(used)} already spent or held); "
                f"it resets at {resets.isoformat()}, or raise it with `pointsman keys create --budget`"
            )
        return start

    @staticmethod
    def _adjust_budget(conn: Connection, reservation: Any, delta: int) -> None:
        """Move the key's budget use by ``delta`` if the reservation's budget period is still the current one."""
        if reservation.api_key_id is None or reservation.budget_period_start is None or delta == 0:
            return
        conn.execute(
            update(api_keys)
            .where(
                api_keys.c.id == reservation.api_key_id,
                api_keys.c.budget_period_start == reservation.budget_period_start,
            )
            .values(budget_used_pico=api_keys.c.budget_used_pico + delta)
        )

    @staticmethod
    def _move_balance(conn: Connection, account_id: int, amount: int) -> int:
        return int(
            conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(balance_pico=accounts.c.balance_pico + amount)
                .returning(accounts.c.balance_pico)
            ).scalar_one()
        )

    def _credit(self, conn: Connection, account_id: int, kind: str, amount: int, *, note: str | None) -> int:
        try:
            balance = self._move_balance(conn, account_id, amount)
        except NoResultFound as exc:
            raise UnknownNameError("account id", str(account_id), [], param="account") from exc
        self._entry(conn, account_id, kind, amount, note=note)
        return balance

    def _entry(
        self,
        conn: Connection,
        account_id: int,
        kind: str,
        amount: int,
        *,
        cost_pico: int = 0,
        reservation_id: str | None = None,
        api_key_id: int | None = None,
        request_id: str | None = None,
        endpoint: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        price: Price | None = None,
        note: str | None = None,
    ) -> None:
        conn.execute(
            insert(entries).values(
                account_id=account_id,
                kind=kind,
                amount_pico=amount,
                cost_pico=cost_pico,
                reservation_id=reservation_id,
                api_key_id=api_key_id,
                request_id=request_id,
                endpoint=endpoint,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                input_usd_per_mtok=str(price.input_usd_per_mtok) if price else None,
                output_usd_per_mtok=str(price.output_usd_per_mtok) if price else None,
                note=note,
                created_at=self._clock(),
            )
        )
