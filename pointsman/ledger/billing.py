"""The gateway's billing backend on the real ledger (``[gateway] billing = "ledger"``, the default).

Implements ``pointsman.gateway.billing.Billing``: API key → account (with the key's requests-per-minute limit),
reserve → settle / release in the database. The ledger is synchronous SQLAlchemy, so every call runs in a worker
thread (``anyio.to_thread``) and never blocks the event loop. A background task (the *sweeper*) returns the
holds of reservations that outlived their TTL, i.e. those of a gateway that died mid-request; it runs once at
start and then every ``sweep_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from sqlalchemy.exc import SQLAlchemyError

from pointsman.db import create_db_engine, upgrade
from pointsman.errors import PermissionDeniedError, PointsmanError
from pointsman.ledger.config import ledger_config_from
from pointsman.ledger.keys import KeyStore
from pointsman.ledger.ledger import Hold, Ledger
from pointsman.ledger.limits import RateLimiter, make_rate_limiter
from pointsman.ledger.money import Price

if TYPE_CHECKING:
    from pointsman.catalog import Endpoint
    from pointsman.config import Config
    from pointsman.gateway.billing import Usage
    from pointsman.settings import Settings

__all__ = ["LedgerAccount", "LedgerBilling", "price_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LedgerAccount:
    """The caller as the gateway sees it: the account, and the key it used (never the key itself)."""

    id: str  # "account-name" — what the gateway logs
    account_id: int
    key_id: int
    key_prefix: str
    is_admin: bool
    rpm_limit: int | None


def price_of(endpoint: Endpoint) -> Price:
    return Price(endpoint.input_usd_per_mtok, endpoint.output_usd_per_mtok)


class LedgerBilling:
    """Accounts, keys and credit in the database; rate limits in Redis or in process."""

    def __init__(self, ledger: Ledger, limiter: RateLimiter) -> None:
        self.ledger = ledger
        self.keys = KeyStore(ledger)
        self.limiter = limiter
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings, config: Config | None = None) -> LedgerBilling:
        """Open the configured database, migrate it, and start the sweeper on the running event loop."""
        engine = create_db_engine(settings=settings)
        upgrade(engine)
        billing = cls(
            Ledger(engine, config=ledger_config_from(config)), make_rate_limiter(settings.redis_url)
        )
        billing.start_sweeper()
        return billing

    # ---- the Billing protocol ---------------------------------------------------------------------------------

    async def authenticate(self, api_key: str | None) -> LedgerAccount:
        info = await anyio.to_thread.run_sync(self.keys.authenticate, api_key)
        if info.rpm_limit is not None:
            await self.limiter.hit(info.id, info.rpm_limit)
        return LedgerAccount(
            id=info.account_name,
            account_id=info.account_id,
            key_id=info.id,
            key_prefix=info.prefix,
            is_admin=info.is_admin,
            rpm_limit=info.rpm_limit,
        )

    async def reserve(
        self, account: Any, endpoint: Endpoint, input_tokens: int, max_output_tokens: int, request_id: str
    ) -> Hold:
        assert isinstance(account, LedgerAccount), (
            "reserve needs the account LedgerBilling.authenticate returned"
        )

        def run() -> Hold:
            return self.ledger.reserve(
                account.account_id,
                prices=price_of(endpoint),
                input_tokens=input_tokens,
                max_output_tokens=max_output_tokens,
                api_key_id=account.key_id,
                request_id=request_id,
                endpoint=endpoint.name,
            )

        return await anyio.to_thread.run_sync(run)

    async def settle(self, reservation: Any, endpoint: Endpoint, usage: Usage) -> None:
        assert isinstance(reservation, Hold), "settle needs the hold LedgerBilling.reserve returned"

        def run() -> None:
            self.ledger.settle(
                reservation.reservation_id,
                price=price_of(endpoint),
                input_tokens=usage.prompt_tokens,
                output_tokens=usage.completion_tokens,
                endpoint=endpoint.name,
            )

        await anyio.to_thread.run_sync(run)

    async def release(self, reservation: Any) -> None:
        assert isinstance(reservation, Hold), "release needs the hold LedgerBilling.reserve returned"
        await anyio.to_thread.run_sync(lambda: self.ledger.release(reservation.reservation_id))

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self.limiter.aclose()
        self.ledger.close()

    # ---- beyond the protocol (the credits and admin routes) ---------------------------------------------------

    async def require_admin(self, api_key: str | None) -> LedgerAccount:
        account = await self.authenticate(api_key)
        if not account.is_admin:
            raise PermissionDeniedError(
                "this endpoint needs an admin key; create one with `pointsman keys create --account NAME --admin`"
            )
        return account

    # ---- the sweeper ------------------------------------------------------------------------------------------

    def start_sweeper(self) -> None:
        """Start the periodic sweeper on the running loop (no-op without one, or when already running)."""
        if self._sweeper is not None and not self._sweeper.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._sweeper = loop.create_task(self._sweep_forever(), name="pointsman-ledger-sweeper")

    async def sweep_once(self) -> int:
        return await anyio.to_thread.run_sync(self.ledger.expire_stale)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep_once()
            except (SQLAlchemyError, PointsmanError) as exc:  # the database may be briefly away; try again
                log.warning(
                    "ledger sweeper failed, retrying in %.0f s: %s", self.ledger.config.sweep_interval_s, exc
                )
            await asyncio.sleep(self.ledger.config.sweep_interval_s)
