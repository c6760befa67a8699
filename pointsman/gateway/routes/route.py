"""``POST /v1/route``: the routing dry run. The ranked endpoints and the reasons, nothing sent upstream."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from pointsman.gateway.dependencies import GatewayState, api_key_of, get_state
from pointsman.gateway.requests import parse_chat_request, read_body

router = APIRouter()


@router.post("/v1/route")
async def dry_run(request: Request, state: GatewayState = Depends(get_state)) -> dict[str, Any]:
    await state.billing.authenticate(api_key_of(request))
    body, req = parse_chat_request(await read_body(request, state.settings.max_body_bytes), state.settings)
    resolution = await state.resolver.resolve(
        req.model, body["messages"], req.max_completion_tokens or req.max_tokens
    )
    state.metrics.scorer_latency.observe(resolution.scorer_s)
    state.metrics.requests.labels("route", "200").inc()
    return {
        "router": resolution.router,
        "scorer_ms": round(resolution.scorer_s * 1000, 3),
        "candidates": resolution.explain(),
        "fallback_depth": state.settings.fallback_depth,
        **resolution.details,
    }
