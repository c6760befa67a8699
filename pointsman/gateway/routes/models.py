"""``GET /v1/models``: every enabled endpoint, every model (best provider by the default router) and the
routers available, in OpenAI's list shape with a ``pointsman`` object on each entry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from pointsman.gateway.dependencies import GatewayState, get_state

router = APIRouter()


@router.get("/v1/models")
async def list_models(state: GatewayState = Depends(get_state)) -> dict[str, Any]:
    catalog = state.catalog
    data: list[dict[str, Any]] = []
    for name in catalog.models:
        data.append({"id": name, "object": "model", "owned_by": "pointsman", "pointsman": {"kind": "model"}})
    for endpoint in catalog.endpoints():
        data.append(
            {
                "id": endpoint.name,
                "object": "model",
                "owned_by": endpoint.provider,
                "pointsman": {
                    "kind": "endpoint",
                    "model": endpoint.model,
                    "provider": endpoint.provider,
                    "input_usd_per_mtok": str(endpoint.input_usd_per_mtok),
                    "output_usd_per_mtok": str(endpoint.output_usd_per_mtok),
                    "price_as_of": endpoint.price_as_of.isoformat(),
                    "context_window": endpoint.context_window,
                    "api_style": endpoint.api_style,
                },
            }
        )
    routing = "available" if state.resolver.ranker is not None else "unavailable: name endpoints"
    data.append(
        {
            "id": state.default_router,
            "object": "model",
            "owned_by": "pointsman",
            "pointsman": {"kind": "router", "default": True, "status": routing},
        }
    )
    return {"object": "list", "data": data}
