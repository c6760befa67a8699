"""``GET /v1/credits``: the caller's own balance, what was granted, topped up, spent and is held, and spend by
model and by endpoint. Amounts are decimal strings in USD (exact; JSON numbers would be floats)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request

from pointsman.errors import InvalidRequestError
from pointsman.gateway.dependencies import GatewayState, api_key_of, get_state
from pointsman.ledger.billing import LedgerBilling
from pointsman.ledger.money import pico_to_usd

router = APIRouter()

__all__ = ["ledger_billing", "router", "usd"]


def usd(pico: int) -> str:
    """An exact decimal string with at least 6 decimals ("0.001250")."""
    value = pico_to_usd(pico)
    text = format(value, "f")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(6, '0')}"


def ledger_billing(state: GatewayState) -> LedgerBilling:
    if not isinstance(state.billing, LedgerBilling):
        raise InvalidRequestError(
            "this gateway runs without accounts or credit (open access); start it without --open-access "
            "and with [gateway] billing = 'ledger' to use /v1/credits"
        )
    return state.billing


@router.get("/v1/credits")
async def credits(request: Request, state: GatewayState = Depends(get_state)) -> dict[str, Any]:
    billing = ledger_billing(state)
    account = await billing.authenticate(api_key_of(request))
    ledger = billing.ledger

    def read() -> tuple[int, dict[str, int], dict[str, int]]:
        return (
            ledger.balance(account.account_id),
            ledger.totals(account.account_id),
            ledger.spend_by_endpoint(account.account_id),
        )

    balance, totals, by_endpoint = await anyio.to_thread.run_sync(read)
    by_model: dict[str, int] = {}
    for endpoint, pico in by_endpoint.items():
        model = endpoint.rpartition("@")[0] or endpoint
        by_model[model] = by_model.get(model, 0) + pico
    return {
        "object": "credits",
        "account": account.id,
        "balance_usd": usd(balance),
        "granted_usd": usd(totals["granted"]),
        "topped_up_usd": usd(totals["topped_up"]),
        "spent_usd": usd(totals["spent"]),
        "held_usd": usd(totals["held"]),
        "spend_by_model_usd": {k: usd(v) for k, v in sorted(by_model.items(), key=lambda kv: -kv[1])},
        "spend_by_endpoint_usd": {k: usd(v) for k, v in by_endpoint.items()},
    }
