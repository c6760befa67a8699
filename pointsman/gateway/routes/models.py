"""``GET /v1/models``: every model, every enabled endpoint and every router a client can name, in OpenAI's list
shape. Each entry carries a ``pointsman`` object whose ``kind`` says what it is: ``model``, ``endpoint`` or
``router``.

Routers are the default router (``[routing] default_router``), the built-in scorers by name
(``router@prior``, ``router@neural``; any ``|...`` items may follow the name) and the custom routers deployed
now (``pointsman custom deploy NAME``; read at each call, so a deploy or undeploy shows without a restart).
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, time
from typing import Any

from fastapi import APIRouter, Depends

from pointsman.gateway.dependencies import GatewayState, get_state

router = APIRouter()

log = logging.getLogger("pointsman.gateway")


@router.get("/v1/models")
async def list_models(state: GatewayState = Depends(get_state)) -> dict[str, Any]:
    catalog = state.catalog
    data: list[dict[str, Any]] = []
    for name in catalog.models:
        data.append(_entry(name, "pointsman", {"kind": "model"}))
    for endpoint in catalog.endpoints():
        as_of = datetime.combine(endpoint.price_as_of, time(), UTC)
        details = {
            "kind": "endpoint",
            "model": endpoint.model,
            "provider": endpoint.provider,
            "input_usd_per_mtok": str(endpoint.input_usd_per_mtok),
            "output_usd_per_mtok": str(endpoint.output_usd_per_mtok),
            "price_as_of": endpoint.price_as_of.isoformat(),
            "context_window": endpoint.context_window,
            "api_style": endpoint.api_style,
        }
        data.append(_entry(endpoint.name, endpoint.provider, details, created=int(as_of.timestamp())))
    data += await _routers(state)
    return {"object": "list", "data": data}


def _entry(ident: str, owner: str, details: dict[str, Any], *, created: int = 0) -> dict[str, Any]:
    return {"id": ident, "object": "model", "created": created, "owned_by": owner, "pointsman": details}


async def _routers(state: GatewayState) -> list[dict[str, Any]]:
    from pointsman.scorer.default import SCORER_CHOICES

    status = "available" if state.resolver.ranker is not None else "unavailable: name endpoints"
    routers = [
        _entry(
            state.default_router,
            "pointsman",
            {"kind": "router", "router": "default", "default": True, "status": status},
        )
    ]
    for name in SCORER_CHOICES:
        details = {"kind": "router", "router": name, "default": False, "source": "builtin", "status": status}
        routers.append(_entry(f"router@{name}", "pointsman", details))
    for record in await asyncio.to_thread(_deployed_custom_routers):
        details = {
            "kind": "router",
            "router": record["name"],
            "default": False,
            "source": "custom",
            "models": record["models"],
            "status": status,
        }
        created = int(record["deployed_at"])
        routers.append(_entry(f"router@{record['name']}", "pointsman", details, created=created))
    return routers


def _deployed_custom_routers() -> list[dict[str, Any]]:
    """The deployment records of the custom routers deployed now, in the data directory the router resolves
    ``router@NAME`` from. A damaged record is logged and left out (``router@NAME`` would answer the error)."""
    from pointsman.custom.registry import DEPLOYED, deployed_names
    from pointsman.custom.store import router_dir
    from pointsman.settings import Settings

    data_dir = Settings().data_dir  # where pointsman.router resolves router@NAME from
    records = []
    for name in deployed_names(data_dir=data_dir):
        path = router_dir(data_dir, name) / DEPLOYED
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            records.append(
                {
                    "name": name,
                    "models": [str(m) for m in record["models"]],
                    "deployed_at": float(record.get("deployed_at") or 0),
                }
            )
        except FileNotFoundError:  # undeployed since the directory was listed
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("custom router %s: %s is damaged (%s); not listed in /v1/models", name, path, exc)
    return records
