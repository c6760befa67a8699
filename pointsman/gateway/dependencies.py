"""What route handlers get injected: the long-lived gateway state, its settings, and the caller's account."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from fastapi import Depends, Request

from pointsman.gateway.billing import Account, Billing
from pointsman.gateway.fallback import FallbackEngine
from pointsman.gateway.metrics import GatewayMetrics
from pointsman.gateway.routing import Resolver
from pointsman.gateway.settings import GatewaySettings
from pointsman.providers.base import Provider, Upstream

if TYPE_CHECKING:
    from pointsman.catalog import Catalog, Endpoint
    from pointsman.stats.telemetry import TrafficTelemetry

__all__ = ["GatewayState", "api_key_of", "get_account", "get_gateway_settings", "get_state"]


@dataclass
class GatewayState:
    """Everything built once in the lifespan and shared by all requests (kept on ``app.state.gateway``)."""

    settings: GatewaySettings
    catalog: Catalog
    resolver: Resolver
    client: httpx.AsyncClient
    providers: dict[str, Provider]
    engine: FallbackEngine
    metrics: GatewayMetrics
    billing: Billing
    executor: ThreadPoolExecutor
    default_router: str
    upstreams: dict[str, Upstream] = field(default_factory=dict)
    telemetry: TrafficTelemetry | None = None  # records routed streams' TTFT/ITL (pointsman.stats)

    def upstream(self, endpoint: Endpoint) -> Upstream:
        """Where ``endpoint`` is served, with its key read from the environment (once per endpoint)."""
        found = self.upstreams.get(endpoint.name)
        if found is None:
            key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
            found = Upstream(
                endpoint.name, endpoint.base_url, endpoint.upstream_model, endpoint.api_key_env, key
            )
            if key or not endpoint.api_key_env:
                self.upstreams[endpoint.name] = found  # a missing key is looked up again next time
        return found


async def get_state(request: Request) -> GatewayState:
    # async on purpose: FastAPI runs plain ``def`` dependencies in a worker thread, a hop per request
    return request.app.state.gateway


async def get_gateway_settings(state: GatewayState = Depends(get_state)) -> GatewaySettings:
    return state.settings


def api_key_of(request: Request) -> str | None:
    """The caller's key: ``Authorization: Bearer KEY`` (OpenAI clients) or ``x-api-key`` (Anthropic clients)."""
    auth = request.headers.get("authorization")
    if auth:
        scheme, _, key = auth.partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return key.strip()
    return request.headers.get("x-api-key") or None


async def get_account(request: Request, state: GatewayState = Depends(get_state)) -> Account:
    return await state.billing.authenticate(api_key_of(request))
