"""Admin endpoints (an admin key: ``pointsman keys create --account NAME --admin``).

``POST /v1/admin/credits`` adds credit to an account: ``{"account": "alice", "usd": "20", "note": "invoice 7"}``
(``"grant": true`` records free credit instead of a paid top-up; ``"create": true`` creates a missing account,
with no signup grant). Amounts are USD as a decimal string or number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pointsman.errors import InvalidRequestError
from pointsman.gateway.dependencies import GatewayState, api_key_of, get_state
from pointsman.gateway.routes.credits import ledger_billing, usd

router = APIRouter()

__all__ = ["TopUp", "router"]


class TopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(min_length=1, max_length=200)
    usd: Decimal = Field(gt=0)
    note: str | None = Field(default=None, max_length=500)
    grant: bool = False
    create: bool = False


@router.post("/v1/admin/credits")
async def top_up(request: Request, state: GatewayState = Depends(get_state)) -> dict[str, Any]:
    billing = ledger_billing(state)
    await billing.require_admin(api_key_of(request))
    try:
        body = TopUp.model_validate_json(await request.body())
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequestError(
            f'invalid top-up: {where}: {err["msg"]}; send {{"account": NAME, "usd": "10.00"}}',
            param=where or None,
        ) from exc
    ledger = billing.ledger

    def run() -> tuple[str, int]:
        if body.create:
            account, _ = ledger.ensure_account(body.account, grant_usd=0)
        else:
            account = ledger.account(body.account)
        add = ledger.grant if body.grant else ledger.top_up
        return account.name, add(account.id, body.usd, note=body.note)

    name, balance = await anyio.to_thread.run_sync(run)
    return {"object": "credits", "account": name, "balance_usd": usd(balance)}
