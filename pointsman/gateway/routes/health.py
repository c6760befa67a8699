"""``GET /healthz`` and ``GET /metrics`` (Prometheus text format)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from pointsman.gateway.dependencies import GatewayState, get_state

router = APIRouter()


@router.get("/healthz")
async def healthz(state: GatewayState = Depends(get_state)) -> dict[str, Any]:
    """Liveness plus the endpoints now cooling down after repeated failures."""
    return {"status": "ok", "cooling_down": state.engine.breaker.cooling_down()}


@router.get("/metrics")
async def metrics(state: GatewayState = Depends(get_state)) -> Response:
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
