"""A hypothesis state machine over grant / top-up / reserve / settle / release / abort / crash-and-sweep holds
balance = grants + top-ups - settled - open reservations (and = the sum of the entries) after every step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine

from pointsman.db import create_db_engine, upgrade
from pointsman.errors import InsufficientCreditError
from pointsman.ledger import Ledger, LedgerConfig, Price
from pointsman.ledger.money import request_cost_pico, usd_to_pico
from pointsman.ledger.testing import postgres_available, temporary_postgres_schema

TTL_S = 60
prices = st.builds(
    Price,
    st.decimals(min_value=0, max_value=60, places=6),
    st.decimals(min_value=0, max_value=120, places=6),
)
usd = st.decimals(min_value=Decimal("0.000001"), max_value=5, places=6)
tokens = st.integers(min_value=0, max_value=8000)


class LedgerMachine(RuleBasedStateMachine):
    engine: ClassVar[Engine]

    holds = Bundle("holds")

    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2026, 11, 30, tzinfo=UTC)
        self.ledger = Ledger(
            self.engine, config=LedgerConfig(reservation_ttl_s=TTL_S), clock=lambda: self.now
        )
        self.granted = self.topped_up = self.settled = 0
        self.open: dict[str, int] = {}  # reservation id -> hold
        self.closed: dict[str, str] = {}  # reservation id -> status
        self.maximum: dict[str, tuple[int, int]] = {}  # reservation id -> (input, max output)

    @initialize(grant=st.one_of(st.just(Decimal(0)), usd))
    def signup(self, grant: Decimal) -> None:
        self.account = self.ledger.create_account(f"acct-{uuid.uuid4().hex[:10]}", grant_usd=grant)
        self.granted += usd_to_pico(grant)

    @property
    def expected_balance(self) -> int:
        return self.granted + self.topped_up - self.settled - sum(self.open.values())

    @rule(amount=usd)
    def grant(self, amount: Decimal) -> None:
        self.ledger.grant(self.account.id, amount)
        self.granted += usd_to_pico(amount)

    @rule(amount=usd)
    def top_up(self, amount: Decimal) -> None:
        self.ledger.top_up(self.account.id, amount)
        self.topped_up += usd_to_pico(amount)

    @rule(
        target=holds, candidates=st.lists(prices, min_size=1, max_size=3), input_tokens=tokens, max_out=tokens
    )
    def reserve(self, candidates: list[Price], input_tokens: int, max_out: int) -> object:
        need = max(request_cost_pico(p, input_tokens, max_out) for p in candidates)
        if need > self.expected_balance:
            with pytest.raises(InsufficientCreditError):
                self.ledger.reserve(
                    self.account.id, prices=candidates, input_tokens=input_tokens, max_output_tokens=max_out
                )
            return multiple()
        hold = self.ledger.reserve(
            self.account.id, prices=candidates, input_tokens=input_tokens, max_output_tokens=max_out
        )
        assert hold.amount_pico == need
        self.open[hold.reservation_id] = need
        self.maximum[hold.reservation_id] = (input_tokens, max_out)
        return hold.reservation_id

    def _settle(self, reservation_id: str, price: Price, output_tokens: int) -> None:
        input_tokens, _ = self.maximum[reservation_id]
        charge = self.ledger.settle(
            reservation_id, price=price, input_tokens=input_tokens, output_tokens=output_tokens
        )
        cost = request_cost_pico(price, input_tokens, output_tokens)
        if reservation_id in self.open:
            assert charge is not None and not charge.late and charge.cost_pico == cost
            del self.open[reservation_id]
            self.settled += cost
        elif self.closed[reservation_id] in ("released", "expired"):
            assert charge is not None and charge.late and charge.cost_pico == cost
            self.settled += cost
        else:
            assert charge is None
        self.closed[reservation_id] = "settled"

    @rule(reservation_id=holds, price=prices, data=st.data())
    def settle(self, reservation_id: str, price: Price, data: st.DataObject) -> None:
        """The endpoint that answered (maybe a fallback at another price) reports its usage."""
        _, max_out = self.maximum[reservation_id]
        self._settle(reservation_id, price, data.draw(st.integers(0, max_out)))

    @rule(reservation_id=holds, price=prices, fraction=st.fractions(0, 1))
    def abort(self, reservation_id: str, price: Price, fraction: object) -> None:
        """The client hung up mid-stream: settled for the tokens generated so far."""
        _, max_out = self.maximum[reservation_id]
        self._settle(reservation_id, price, int(max_out * fraction))  # type: ignore[operator]

    @rule(reservation_id=consumes(holds))
    def release(self, reservation_id: str) -> None:
        released = self.ledger.release(reservation_id)
        assert released == (reservation_id in self.open)
        if released:
            del self.open[reservation_id]
            self.closed[reservation_id] = "released"

    @rule()
    def crash_and_sweep(self) -> None:
        """The gateway died: time passes beyond the TTL and the sweeper returns every open hold."""
        self.now += timedelta(seconds=TTL_S + 1)
        assert self.ledger.expire_stale() == len(self.open)
        for reservation_id in self.open:
            self.closed[reservation_id] = "expired"
        self.open.clear()

    def teardown(self) -> None:
        # The database is shared by every example: leave no open hold for the next example's sweeper.
        for reservation_id in list(self.open):
            self.ledger.release(reservation_id)

    @invariant()
    def balance_is_derivable(self) -> None:
        if not hasattr(self, "account"):
            return
        balance = self.ledger.balance(self.account.id)
        assert balance == self.expected_balance
        assert self.ledger.derived_balance(self.account.id) == balance
        totals = self.ledger.totals(self.account.id)
        assert totals["granted"] + totals["topped_up"] - totals["spent"] - totals["held"] == balance
        assert totals["held"] == sum(self.open.values())
        assert self.ledger.open_reservations(self.account.id) == len(self.open)


def _run(engine: Engine, examples: int) -> None:
    LedgerMachine.engine = engine
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


@pytest.mark.slow
def test_ledger_state_machine_sqlite(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'sm.db'}")
    upgrade(engine)
    _run(engine, examples=25)
    engine.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_ledger_state_machine_postgres() -> None:
    if reason := postgres_available():
        pytest.skip(reason)
    with temporary_postgres_schema() as url:
        engine = create_db_engine(url)
        upgrade(engine)
        _run(engine, examples=10)
        engine.dispose()
