"""Who is looking at the console: an account's API key, or an admin key.

The key comes from the ``Authorization: Bearer`` or ``x-api-key`` header (scripts, curl) or from the
``pointsman_console`` cookie that the login form sets (browsers). The cookie is HttpOnly (page scripts cannot read
it), ``SameSite=Strict`` (other sites cannot make the browser send it) and limited to ``/console``; it is
``Secure`` whenever the console is served over HTTPS. It holds the key itself, so logging out only forgets it in
this browser: revoke a leaked key with ``pointsman keys revoke``.

Viewing pages checks the key without counting it against the key's requests-per-minute limit; "Try it" is a
real routing request and is counted like ``/v1/route``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import Request

from pointsman.errors import PermissionDeniedError
from pointsman.gateway.dependencies import GatewayState, api_key_of

if TYPE_CHECKING:
    from pointsman.ledger.ledger import Ledger

__all__ = ["COOKIE", "Viewer", "console_key", "identify", "resolve_account"]

COOKIE = "pointsman_console"


@dataclass(frozen=True)
class Viewer:
    """The caller. ``ledger`` is None when the gateway runs without accounts (open access)."""

    account_name: str
    account_id: int | None
    is_admin: bool
    ledger: Ledger | None
    key_prefix: str | None = None

    @property
    def open_access(self) -> bool:
        return self.ledger is None


def console_key(request: Request) -> str | None:
    """The key a request carries: a header first, then the login cookie."""
    return api_key_of(request) or request.cookies.get(COOKIE) or None


async def identify(state: GatewayState, key: str | None) -> Viewer:
    """The viewer owning ``key``; ``AuthenticationError`` (401) when it is missing, unknown or revoked."""
    from pointsman.ledger.billing import LedgerBilling

    billing = state.billing
    if isinstance(billing, LedgerBilling):
        info = await anyio.to_thread.run_sync(billing.keys.authenticate, key)
        return Viewer(info.account_name, info.account_id, info.is_admin, billing.ledger, info.prefix)
    account = await billing.authenticate(key)
    return Viewer(account.id, None, False, None)


async def resolve_account(viewer: Viewer, requested: str | None) -> tuple[int, str] | None:
    """The account whose spend the viewer may see: their own, or (admin keys only) the one named in
    ``?account=``. None in open access. A non-admin asking for another account gets ``PermissionDeniedError``."""
    if viewer.ledger is None or viewer.account_id is None:
        return None
    if not requested or requested == viewer.account_name:
        return viewer.account_id, viewer.account_name
    if not viewer.is_admin:
        raise PermissionDeniedError(
            f"this key belongs to account {viewer.account_name!r} and can only see its own spend; "
            "log in with an admin key (`pointsman keys create --account NAME --admin`) to see other accounts"
        )
    ledger = viewer.ledger
    account = await anyio.to_thread.run_sync(ledger.account, requested)  # UnknownNameError (404) lists names
    return account.id, account.name
