"""The ledger's tables: accounts, API keys, reservations and the append-only ledger entries.

Money is integer picodollars (1 USD = 10**12), see ``pointsman.ledger.money``. ``accounts.balance_pico`` is
the *available* balance: grants and top-ups in, settled costs and open reservations out. It is a cache of
``SUM(ledger_entries.amount_pico)`` kept in the same transaction as every entry, so it can be locked and
conditionally updated; ``Ledger.derived_balance`` recomputes it from the entries and the tests hold them equal.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from pointsman.db import Base, UTCDateTime

__all__ = ["Account", "ApiKey", "EntryKind", "LedgerEntry", "Reservation", "ReservationStatus"]

# SQLite only auto-increments INTEGER PRIMARY KEY, so the 64-bit id is a plain INTEGER there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class EntryKind:
    """What a ledger entry records; ``amount_pico`` is its signed effect on the available balance."""

    GRANT = "grant"  # +amount: free credit (signup or an admin grant)
    TOP_UP = "top_up"  # +amount: paid credit
    RESERVE = "reserve"  # -hold: the most a request can cost, held before it goes upstream
    SETTLE = "settle"  # hold - cost (or -cost when the hold was already returned): the exact charge
    RELEASE = "release"  # +hold: the request failed before anything was generated
    EXPIRE = "expire"  # +hold: the sweeper returned a reservation nobody settled (a crashed gateway)

    ALL = (GRANT, TOP_UP, RESERVE, SETTLE, RELEASE, EXPIRE)


class ReservationStatus:
    OPEN = "open"
    SETTLED = "settled"
    RELEASED = "released"
    EXPIRED = "expired"


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    balance_pico: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    """An API key: only its SHA-256 is stored; ``prefix`` (the first characters) finds the row."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Optional limits. The budget is spend (settled + held) per calendar period in UTC.
    budget_pico: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_period: Mapped[str | None] = mapped_column(String(8), nullable=True)
    budget_used_pico: Mapped[int] = mapped_column(BigInteger, default=0)
    budget_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    rpm_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Reservation(Base):
    __tablename__ = "reservations"
    __table_args__ = (Index("ix_reservations_status_expires_at", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    endpoint: Mapped[str | None] = mapped_column(String(200), nullable=True)
    amount_pico: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    budget_period_start: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LedgerEntry(Base):
    """One append-only entry. UPDATE and DELETE are refused by database triggers."""

    __tablename__ = "ledger_entries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    amount_pico: Mapped[int] = mapped_column(BigInteger)
    cost_pico: Mapped[int] = mapped_column(BigInteger, default=0)
    reservation_id: Mapped[str | None] = mapped_column(
        ForeignKey("reservations.id"), nullable=True, index=True
    )
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_keys.id"), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    endpoint: Mapped[str | None] = mapped_column(String(200), nullable=True)
    input_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Prices exactly as the catalogue gave them (decimal text), so every charge can be recomputed.
    input_usd_per_mtok: Mapped[str | None] = mapped_column(String(40), nullable=True)
    output_usd_per_mtok: Mapped[str | None] = mapped_column(String(40), nullable=True)
    note: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
