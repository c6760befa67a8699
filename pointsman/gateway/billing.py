"""The billing seam: the four calls the chat route makes to whoever keeps accounts and credit.

The gateway calls, for every chat completion::

    account = await billing.authenticate(api_key)                  # 401/403 on a bad key
    hold = await billing.reserve(account, endpoint, input_tokens,   # 402 when the balance cannot cover it
                                 max_output_tokens, request_id)     #   (before anything goes upstream)
    ... upstream, with fallbacks ...
    await billing.settle(hold, endpoint_that_answered, usage)       # the exact cost of what was generated,
                                                                    #   also for streams cut short
    await billing.release(hold)                                     # instead of settle, when nothing answered
                                                                    #   or the client hung up before the answer

``endpoint`` in ``reserve`` is the most expensive endpoint the request may fall back to (so the hold covers
any of them); ``settle`` names the one that answered. ``usage.estimated`` is True when the provider reported no
usage and the gateway counted the tokens itself. Every call is awaited on the event loop: an implementation
that does blocking I/O runs it in a thread (``anyio.to_thread.run_sync``). Each method raises
``PointsmanError`` subclasses only (``AuthenticationError``, ``PermissionDeniedError``,
``InsufficientCreditError``, ``RateLimitError``), which the gateway answers in OpenAI's error shape.

Backends are chosen by name (``[gateway] billing = "ledger"`` or ``--open-access``) from ``BILLING_BACKENDS``:
each entry is ``"module:callable"``, imported only when chosen, called with the process ``Settings`` and the
parsed ``Config`` and returning a ``Billing``. ``"open"`` (``OpenAccessBilling``) accepts any request and
records usage in memory; it is for tests and the local demo, never a silent default.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pointsman.errors import ConfigError, UnknownNameError

if TYPE_CHECKING:
    from pointsman.catalog import Endpoint
    from pointsman.config import Config
    from pointsman.settings import Settings

__all__ = [
    "BILLING_BACKENDS",
    "Account",
    "Billing",
    "OpenAccessBilling",
    "Settlement",
    "Usage",
    "load_billing",
]


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one request consumed at the endpoint that answered."""

    prompt_tokens: int
    completion_tokens: int
    estimated: bool = False  # True when counted by the gateway because the provider reported none

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@runtime_checkable
class Account(Protocol):
    """Whoever a key belongs to. The gateway only reads ``id`` (for logs and metrics)."""

    @property
    def id(self) -> str: ...


@runtime_checkable
class Billing(Protocol):
    """Accounts, keys and credit as the gateway sees them. Reservations are opaque to the gateway."""

    async def authenticate(self, api_key: str | None) -> Account:
        """The account owning ``api_key`` (None when the request sent no key)."""
        ...

    async def reserve(
        self, account: Account, endpoint: Endpoint, input_tokens: int, max_output_tokens: int, request_id: str
    ) -> Any:
        """Hold the most this request can cost; raise ``InsufficientCreditError`` when it cannot be covered."""
        ...

    async def settle(self, reservation: Any, endpoint: Endpoint, usage: Usage) -> None:
        """Charge what ``endpoint`` generated, release the rest of the hold."""
        ...

    async def release(self, reservation: Any) -> None:
        """Drop the hold: nothing was generated."""
        ...

    async def aclose(self) -> None:
        """Release connections; called once when the gateway stops."""
        ...


@dataclass(frozen=True, slots=True)
class _OpenAccount:
    id: str = "open-access"


@dataclass(slots=True)
class _Hold:
    request_id: str
    endpoint: str
    input_tokens: int
    max_output_tokens: int


@dataclass
class OpenAccessBilling:
    """Anyone may call; nothing is charged. Keeps every settlement in ``settled`` so tests can check what a
    real ledger would have been asked to charge. For tests and the offline demo only."""

    settled: list[tuple[str, str, Usage]] = field(default_factory=list)  # (request_id, endpoint, usage)
    released: list[str] = field(default_factory=list)
    reserved: list[_Hold] = field(default_factory=list)

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, config: Config | None = None
    ) -> OpenAccessBilling:
        return cls()

    async def authenticate(self, api_key: str | None) -> Account:
        return _OpenAccount()

    async def reserve(
        self, account: Account, endpoint: Endpoint, input_tokens: int, max_output_tokens: int, request_id: str
    ) -> Any:
        hold = _Hold(request_id, endpoint.name, input_tokens, max_output_tokens)
        self.reserved.append(hold)
        return hold

    async def settle(self, reservation: Any, endpoint: Endpoint, usage: Usage) -> None:
        self.settled.append((reservation.request_id, endpoint.name, usage))

    async def release(self, reservation: Any) -> None:
        self.released.append(reservation.request_id)

    async def aclose(self) -> None:
        return None


class Settlement:
    """One request's hold, closed exactly once: the first ``settle`` or ``release`` reaches the billing backend,
    later calls do nothing. Every way a request can end (its stream completing or breaking, the client hanging
    up before or during the answer) closes the hold through it without double-charging."""

    __slots__ = ("billing", "closed", "hold")

    def __init__(self, billing: Billing, hold: Any) -> None:
        self.billing = billing
        self.hold = hold
        self.closed = False

    async def settle(self, endpoint: Endpoint, usage: Usage) -> None:
        if not self.closed:
            self.closed = True
            await _to_the_end(self.billing.settle(self.hold, endpoint, usage))

    async def release(self) -> None:
        if not self.closed:
            self.closed = True
            await _to_the_end(self.billing.release(self.hold))


async def _to_the_end(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to completion even if the caller is cancelled meanwhile (a client hanging up cancels the
    handler's task with ``task.cancel()``, which anyio's shielded scopes do not stop): the hold is marked closed
    before the backend call, so a call cut short would leave it open until the sweeper. The caller's
    cancellation is re-raised once the work is done."""
    task = asyncio.ensure_future(work)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


# name -> "module:callable(settings, config) -> Billing"
BILLING_BACKENDS: dict[str, str] = {
    "ledger": "pointsman.ledger.billing:LedgerBilling.from_settings",
    "open": "pointsman.gateway.billing:OpenAccessBilling.from_settings",
}


def load_billing(name: str, settings: Settings, config: Config) -> Billing:
    """Build the billing backend ``name``. A missing backend says how to run without one."""
    if name not in BILLING_BACKENDS:
        raise UnknownNameError("billing backend", name, BILLING_BACKENDS, param="billing")
    module_name, _, attr = BILLING_BACKENDS[name].partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"the {name!r} billing backend is not available ({exc}); for a local demo without accounts or "
            "credit, start the gateway with `pointsman serve --open-access`"
        ) from exc
    billing = target(settings, config)
    return billing
