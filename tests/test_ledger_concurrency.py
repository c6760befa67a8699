"""Overspending is impossible under concurrency (library level): many threads on two independent connection
pools (as two gateway replicas would be) race to reserve and settle against one account funded for about ten
requests, on the real PostgreSQL and on SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pointsman.db import create_db_engine, upgrade
from pointsman.errors import InsufficientCreditError
from pointsman.ledger import Ledger, LedgerConfig, Price
from pointsman.ledger.money import request_cost_pico
from pointsman.ledger.testing import postgres_available, temporary_postgres_schema

PRICE = Price(Decimal("3"), Decimal("15"))
INPUT_TOKENS = 800
MAX_OUTPUT = 1000
HOLD = request_cost_pico(PRICE, INPUT_TOKENS, MAX_OUTPUT)
REQUESTS = 120


@dataclass
class Race:
    charged: list[int] = field(default_factory=list)
    refused: int = 0
    lowest_balance: int | None = None
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _output_tokens(i: int) -> int:
    return 1 + (i * 7919) % MAX_OUTPUT  # deterministic, spread over 1..MAX_OUTPUT


def _race(ledgers: list[Ledger], account_id: int) -> Race:
    race = Race()
    barrier = threading.Barrier(REQUESTS)
    done = threading.Event()

    def request(i: int) -> None:
        ledger = ledgers[i % len(ledgers)]
        try:
            barrier.wait()
            hold = ledger.reserve(
                account_id,
                prices=PRICE,
                input_tokens=INPUT_TOKENS,
                max_output_tokens=MAX_OUTPUT,
                request_id=f"r{i}",
            )
        except InsufficientCreditError:
            with race.lock:
                race.refused += 1
            return
        except BaseException as exc:  # reported by the test
            race.errors.append(exc)
            return
        try:
            time.sleep(0.005)  # "upstream"
            out = _output_tokens(i)
            charge = ledger.settle(
                hold.reservation_id, price=PRICE, input_tokens=INPUT_TOKENS, output_tokens=out
            )
            assert charge is not None
            with race.lock:
                race.charged.append(request_cost_pico(PRICE, INPUT_TOKENS, out))
        except BaseException as exc:
            race.errors.append(exc)

    def monitor() -> None:
        while not done.is_set():
            balance = ledgers[0].balance(account_id)
            race.lowest_balance = (
                balance if race.lowest_balance is None else min(race.lowest_balance, balance)
            )
            time.sleep(0.002)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(REQUESTS)]
    watcher = threading.Thread(target=monitor)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    done.set()
    watcher.join()
    return race


def _check(ledgers: list[Ledger], account_id: int, funded: int, race: Race) -> None:
    assert not race.errors, race.errors[:3]
    ledger = ledgers[0]
    total = sum(race.charged)
    balance = ledger.balance(account_id)
    assert race.refused > 0, "the account was funded for ~10 requests; some of the 120 must have been refused"
    assert len(race.charged) + race.refused == REQUESTS
    assert len(race.charged) >= 10
    assert total <= funded
    assert race.lowest_balance is not None and race.lowest_balance >= 0
    assert balance == funded - total >= 0
    assert ledger.derived_balance(account_id) == balance
    assert ledger.totals(account_id)["spent"] == total
    assert ledger.open_reservations(account_id) == 0


@pytest.fixture
def sqlite_engines(tmp_path: Path) -> Iterator[list[Engine]]:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    engines = [create_db_engine(url), create_db_engine(url)]
    upgrade(engines[0])
    yield engines
    for e in engines:
        e.dispose()


@pytest.fixture
def postgres_engines() -> Iterator[list[Engine]]:
    if reason := postgres_available():
        pytest.skip(reason)
    with temporary_postgres_schema() as url:
        engines = [create_db_engine(url), create_db_engine(url)]
        upgrade(engines[0])
        yield engines
        for e in engines:
            e.dispose()


def _run(engines: list[Engine]) -> None:
    ledgers = [Ledger(e, config=LedgerConfig()) for e in engines]
    funded_usd = Decimal(HOLD * 10 + HOLD // 2) / 10**12  # about ten holds
    account = ledgers[0].create_account("racer", grant_usd=funded_usd)
    race = _race(ledgers, account.id)
    _check(ledgers, account.id, account.balance_pico, race)


@pytest.mark.slow
def test_no_overspend_sqlite(sqlite_engines: list[Engine]) -> None:
    _run(sqlite_engines)


@pytest.mark.slow
@pytest.mark.postgres
def test_no_overspend_postgres(postgres_engines: list[Engine]) -> None:
    _run(postgres_engines)
