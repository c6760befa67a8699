"""The ledger library on SQLite and on the real PostgreSQL: money arithmetic, accounts, reserve / settle /
release / expire, the derivation of the balance from entries, append-only entries, budgets, migrations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from pointsman.db import create_db_engine, current_revision, head_revision, upgrade
from pointsman.errors import (
    ConfigError,
    InsufficientCreditError,
    InvalidRequestError,
    RateLimitError,
    UnknownNameError,
)
from pointsman.ledger import KeyStore, Ledger, LedgerConfig, Price, format_usd, pico_to_usd, usd_to_pico
from pointsman.ledger.money import request_cost_pico, token_cost_pico
from pointsman.ledger.testing import postgres_available, temporary_postgres_schema

CHEAP = Price(Decimal("0.15"), Decimal("0.6"))
DEAR = Price(Decimal("2.5"), Decimal("10"))


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_db_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
        upgrade(eng)
        yield eng
        eng.dispose()
        return
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    with temporary_postgres_schema() as url:
        eng = create_db_engine(url)
        upgrade(eng)
        yield eng
        eng.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(engine: Engine, clock: Clock) -> Ledger:
    return Ledger(engine, config=LedgerConfig(reservation_ttl_s=60), clock=clock)


# ---- money ---------------------------------------------------------------------------------------------------


def test_money_is_exact_integer_picodollars() -> None:
    assert usd_to_pico("50") == 50 * 10**12
    assert usd_to_pico(Decimal("0.000000000001")) == 1
    assert pico_to_usd(1) == Decimal("1E-12")
    assert token_cost_pico(1, Decimal("0.15")) == 150_000
    assert token_cost_pico(3, Decimal("0.000001")) == 3
    # 1234 in at $2.50/M + 567 out at $10/M = 0.003085 + 0.00567 USD
    assert pico_to_usd(request_cost_pico(DEAR, 1234, 567)) == Decimal("0.008755")
    assert format_usd(usd_to_pico("1.5")) == "$1.500000"
    assert format_usd(7) == "$0.000000000007"
    assert format_usd(-usd_to_pico("2")) == "-$2.000000"


def test_money_refuses_floats_and_inexact_amounts() -> None:
    with pytest.raises(TypeError, match="never a float"):
        usd_to_pico(0.1)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="more than 12 decimal places"):
        usd_to_pico("0.0000000000001")
    with pytest.raises(InvalidRequestError, match="not a number"):
        usd_to_pico("ten")
    with pytest.raises(InvalidRequestError, match="not a finite number"):
        usd_to_pico("NaN")
    with pytest.raises(InvalidRequestError, match="over the limit"):
        usd_to_pico("2000000")
    # Finer than 1e-12 USD per token: rounded once per request, half up.
    assert token_cost_pico(1, Decimal("0.0000004")) == 0
    assert token_cost_pico(3, Decimal("0.0000005")) == 2  # 1.5 pUSD
    assert request_cost_pico(Price(Decimal("0.0000005"), Decimal("0.0000005")), 1, 2) == 2
    with pytest.raises(ConfigError, match="negative"):
        token_cost_pico(1, Decimal("-1"))


# ---- accounts and credit -------------------------------------------------------------------------------------


def test_signup_grant_is_a_ledger_entry(ledger: Ledger) -> None:
    account = ledger.create_account("alice")
    assert account.balance_pico == usd_to_pico(50)
    [entry] = ledger.history(account.id)
    assert (entry.kind, entry.amount_pico, entry.note) == ("grant", usd_to_pico(50), "signup credit")
    assert ledger.derived_balance(account.id) == account.balance_pico


def test_signup_grant_is_configurable(engine: Engine) -> None:
    ledger = Ledger(engine, config=LedgerConfig(signup_credit_usd=Decimal("2.5")))
    assert ledger.create_account("bob").balance_pico == usd_to_pico("2.5")
    zero = ledger.create_account("carol", grant_usd=0)
    assert zero.balance_pico == 0 and ledger.history(zero.id) == []


def test_duplicate_and_unknown_accounts(ledger: Ledger) -> None:
    ledger.create_account("alice")
    with pytest.raises(InvalidRequestError, match=r"already exists.*credits top-up"):
        ledger.create_account("alice")
    with pytest.raises(UnknownNameError, match="did you mean 'alice'"):
        ledger.account("alicee")
    with pytest.raises(UnknownNameError):
        ledger.top_up(999, "5")
    with pytest.raises(InvalidRequestError, match="1 to 200 characters"):
        ledger.create_account("  ")
    with pytest.raises(InvalidRequestError, match="positive"):
        ledger.top_up(ledger.account("alice").id, "0")


def test_top_up_and_grant(ledger: Ledger) -> None:
    account = ledger.create_account("alice", grant_usd=1)
    assert ledger.top_up(account.id, "10.25", note="invoice 7") == usd_to_pico("11.25")
    assert ledger.grant(account.id, "1") == usd_to_pico("12.25")
    totals = ledger.totals(account.id)
    assert totals == {"granted": usd_to_pico(2), "topped_up": usd_to_pico("10.25"), "spent": 0, "held": 0}


# ---- one request ---------------------------------------------------------------------------------------------


def test_reserve_then_settle_charges_exactly_the_reported_usage(ledger: Ledger) -> None:
    account = ledger.create_account("alice", grant_usd=1)
    hold = ledger.reserve(
        account.id, prices=[CHEAP, DEAR], input_tokens=1000, max_output_tokens=500, request_id="req-1"
    )
    assert hold.amount_pico == request_cost_pico(DEAR, 1000, 500)  # the dearest candidate
    reserve = ledger.history(account.id)[0]
    assert (reserve.kind, reserve.amount_pico, reserve.input_usd_per_mtok) == (
        "reserve",
        -hold.amount_pico,
        "2.5",
    )
    assert ledger.balance(account.id) == usd_to_pico(1) - hold.amount_pico
    # The fallback (cheap) endpoint answered: only it is charged, at its price, for what it reported.
    charge = ledger.settle(
        hold.reservation_id, price=CHEAP, input_tokens=1000, output_tokens=123, endpoint="small@cheap"
    )
    assert charge is not None and not charge.late
    assert charge.cost_pico == 1000 * 150_000 + 123 * 600_000
    assert ledger.balance(account.id) == usd_to_pico(1) - charge.cost_pico
    assert ledger.derived_balance(account.id) == ledger.balance(account.id)
    settle = ledger.history(account.id)[0]
    assert (settle.kind, settle.endpoint, settle.request_id) == ("settle", "small@cheap", "req-1")
    assert (settle.input_tokens, settle.output_tokens) == (1000, 123)
    assert (settle.input_usd_per_mtok, settle.output_usd_per_mtok) == ("0.15", "0.6")
    assert ledger.spend_by_endpoint(account.id) == {"small@cheap": charge.cost_pico}
    assert ledger.reservation_status(hold.reservation_id) == "settled"
    # Settling twice charges nothing.
    assert ledger.settle(hold.reservation_id, price=CHEAP, input_tokens=1000, output_tokens=123) is None
    assert ledger.balance(account.id) == usd_to_pico(1) - charge.cost_pico


def test_insufficient_credit_is_a_402_in_openai_shape(ledger: Ledger) -> None:
    account = ledger.create_account("poor", grant_usd="0.001")
    with pytest.raises(InsufficientCreditError) as info:
        ledger.reserve(account.id, prices=DEAR, input_tokens=100, max_output_tokens=1000)
    assert info.value.status_code == 402
    body = info.value.to_openai()["error"]
    assert isinstance(body, dict) and body["code"] == "insufficient_quota"
    assert "$0.010250" in body["message"] and "$0.001000" in body["message"] and "top up" in body["message"]
    # Nothing was held or written.
    assert ledger.balance(account.id) == usd_to_pico("0.001")
    assert [e.kind for e in ledger.history(account.id)] == ["grant"]
    with pytest.raises(UnknownNameError):
        ledger.reserve(424242, prices=DEAR, input_tokens=1, max_output_tokens=1)
    with pytest.raises(InvalidRequestError):
        ledger.reserve(account.id, prices=[], input_tokens=1, max_output_tokens=1)
    with pytest.raises(InvalidRequestError):
        ledger.reserve(account.id, prices=DEAR, input_tokens=-1, max_output_tokens=1)


def test_release_returns_the_whole_hold_once(ledger: Ledger) -> None:
    account = ledger.create_account("alice", grant_usd=1)
    hold = ledger.reserve(account.id, prices=DEAR, input_tokens=10, max_output_tokens=10)
    assert ledger.release(hold.reservation_id, note="upstream 500") is True
    assert ledger.release(hold.reservation_id) is False
    assert ledger.balance(account.id) == usd_to_pico(1) == ledger.derived_balance(account.id)
    assert [e.kind for e in ledger.history(account.id)] == ["release", "reserve", "grant"]
    with pytest.raises(UnknownNameError):
        ledger.release("no-such-reservation")


def test_sweeper_expires_abandoned_reservations_and_late_settles_still_charge(
    ledger: Ledger, clock: Clock
) -> None:
    account = ledger.create_account("alice", grant_usd=1)
    abandoned = ledger.reserve(account.id, prices=DEAR, input_tokens=10, max_output_tokens=100)
    fresh = ledger.reserve(account.id, prices=DEAR, input_tokens=10, max_output_tokens=100, ttl_s=600)
    assert ledger.expire_stale() == 0
    clock.now += timedelta(seconds=61)
    assert ledger.expire_stale() == 1
    assert ledger.expire_stale() == 0
    assert ledger.reservation_status(abandoned.reservation_id) == "expired"
    assert ledger.reservation_status(fresh.reservation_id) == "open"
    assert ledger.balance(account.id) == usd_to_pico(1) - fresh.amount_pico
    # The provider answered after all: its exact cost is still charged, the hold is not returned twice.
    charge = ledger.settle(abandoned.reservation_id, price=DEAR, input_tokens=10, output_tokens=5)
    assert charge is not None and charge.late and charge.amount_pico == -charge.cost_pico
    assert ledger.balance(account.id) == usd_to_pico(1) - fresh.amount_pico - charge.cost_pico
    assert ledger.derived_balance(account.id) == ledger.balance(account.id)


def test_usage_above_the_hold_is_still_charged_exactly(ledger: Ledger) -> None:
    account = ledger.create_account("alice", grant_usd=1)
    hold = ledger.reserve(account.id, prices=CHEAP, input_tokens=10, max_output_tokens=10)
    charge = ledger.settle(hold.reservation_id, price=CHEAP, input_tokens=12, output_tokens=20)
    assert charge is not None and charge.cost_pico == request_cost_pico(CHEAP, 12, 20) > hold.amount_pico
    assert ledger.balance(account.id) == usd_to_pico(1) - charge.cost_pico


def test_entries_are_append_only_in_the_database(ledger: Ledger, engine: Engine) -> None:
    ledger.create_account("alice")
    for statement in ("UPDATE ledger_entries SET amount_pico = 0", "DELETE FROM ledger_entries"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))


# ---- budgets -------------------------------------------------------------------------------------------------


def test_key_budget_per_period(ledger: Ledger, clock: Clock) -> None:
    created = KeyStore(ledger).create("alice", credit_usd=100, budget_usd="0.01", budget_period="day")
    key = created.info
    one = request_cost_pico(DEAR, 100, 400)  # $0.00425
    hold_a = ledger.reserve(
        key.account_id, prices=DEAR, input_tokens=100, max_output_tokens=400, api_key_id=key.id
    )
    hold_b = ledger.reserve(
        key.account_id, prices=DEAR, input_tokens=100, max_output_tokens=400, api_key_id=key.id
    )
    with pytest.raises(RateLimitError, match=r"budget of \$0.010000 per day.*resets at 2026-12-01"):
        ledger.reserve(
            key.account_id, prices=DEAR, input_tokens=100, max_output_tokens=400, api_key_id=key.id
        )
    # Settling for less frees budget: only the real cost counts.
    ledger.settle(hold_a.reservation_id, price=DEAR, input_tokens=100, output_tokens=0)
    ledger.release(hold_b.reservation_id)
    assert request_cost_pico(DEAR, 100, 0) + one <= usd_to_pico("0.01")
    ledger.reserve(key.account_id, prices=DEAR, input_tokens=100, max_output_tokens=400, api_key_id=key.id)
    # A new day starts a new budget.
    clock.now += timedelta(days=1)
    ledger.reserve(key.account_id, prices=DEAR, input_tokens=100, max_output_tokens=400, api_key_id=key.id)
    ledger.reserve(key.account_id, prices=DEAR, input_tokens=100, max_output_tokens=400, api_key_id=key.id)
    with pytest.raises(RateLimitError):
        ledger.reserve(
            key.account_id, prices=DEAR, input_tokens=100, max_output_tokens=400, api_key_id=key.id
        )


def test_bad_budget_options(ledger: Ledger) -> None:
    keys = KeyStore(ledger)
    with pytest.raises(InvalidRequestError, match="day, week, month"):
        keys.create("alice", budget_usd=1, budget_period="fortnight")
    with pytest.raises(InvalidRequestError, match="positive"):
        keys.create("alice", budget_usd=0)
    with pytest.raises(InvalidRequestError, match="positive integer"):
        keys.create("alice", rpm_limit=0)


# ---- migrations and engines ----------------------------------------------------------------------------------


def test_upgrade_is_idempotent(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'deep' / 'dir' / 'p.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_bad_database_urls(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        create_db_engine("not a url")
    with pytest.raises(ConfigError, match="supports sqlite and postgresql"):
        create_db_engine("mysql://u@h/db")
    unreachable = create_db_engine("postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(ConfigError, match=r"(?s)cannot migrate.*POINTSMAN_DATABASE_URL"):
        upgrade(unreachable)


def test_postgres_url_means_psycopg3() -> None:
    engine = create_db_engine("postgresql://postgres@127.0.0.1:5432/test")
    assert engine.url.drivername == "postgresql+psycopg"


def test_default_database_is_sqlite_under_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POINTSMAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("POINTSMAN_DATABASE_URL", raising=False)
    engine = create_db_engine()
    upgrade(engine)
    assert (tmp_path / "data" / "pointsman.db").exists()
    engine.dispose()


@pytest.mark.postgres
def test_temporary_schema_is_dropped() -> None:
    if reason := postgres_available():
        pytest.skip(reason)
    with temporary_postgres_schema() as url:
        schema = url.rsplit("%3D", 1)[-1]
    engine = create_db_engine("postgresql://postgres@127.0.0.1:5432/test")
    with engine.connect() as conn:
        found = conn.execute(
            text("SELECT count(*) FROM information_schema.schemata WHERE schema_name = :s"), {"s": schema}
        ).scalar()
    engine.dispose()
    assert found == 0
