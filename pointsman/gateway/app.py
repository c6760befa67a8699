"""Build the gateway: ``create_app(...)`` returns a FastAPI app whose lifespan builds the long-lived objects
(catalogue, resolver and its thread pool, one shared ``httpx.AsyncClient`` that keeps no cookies, provider
adapters, breaker, fallback engine, metrics, billing) and keeps them on ``app.state.gateway``. Nothing is built
at import time.

Every ``PointsmanError`` is answered in OpenAI's error shape with its own status; so are unknown routes and
unexpected failures (500, without internals).
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pointsman.console import mount_console
from pointsman.errors import PointsmanError
from pointsman.gateway.billing import Billing, load_billing
from pointsman.gateway.breaker import CircuitBreaker
from pointsman.gateway.breaker_redis import share_breaker
from pointsman.gateway.dependencies import GatewayState
from pointsman.gateway.fallback import FallbackEngine, RetryPolicy
from pointsman.gateway.metrics import GatewayMetrics
from pointsman.gateway.routes import admin, chat, credits, health, models, route
from pointsman.gateway.routing import Ranker, Resolver
from pointsman.gateway.settings import GatewaySettings
from pointsman.ledger.billing import LedgerBilling
from pointsman.providers.registry import build_providers
from pointsman.providers.transport import CookielessClient, LeanTransport
from pointsman.settings import Settings

if TYPE_CHECKING:
    from pointsman.catalog import Catalog
    from pointsman.config import Config
    from pointsman.stats.service import StatsService
    from pointsman.stats.settings import StatsSettings

__all__ = ["create_app"]

log = logging.getLogger("pointsman.gateway")


def create_app(
    settings: Settings | None = None,
    *,
    gateway_settings: GatewaySettings | None = None,
    catalog: Catalog | None = None,
    billing: Billing | None = None,
    ranker: Ranker | None = None,
    default_router: str | None = None,
    stats: bool | StatsSettings = False,
    freeze_gc: bool = False,
) -> FastAPI:
    """The gateway app. Anything passed in is used as is (tests inject a catalogue, billing or ranker);
    the rest is built in the lifespan from ``settings`` and its config file. ``stats``: True measures
    latency from the config's ``[stats]`` (traffic telemetry, measured figures for ranking, scheduled
    benchmarks), or pass the settings themselves; False (the default for embedding) uses catalogue priors.
    ``freeze_gc``: after startup, move every object alive into the collector's permanent generation
    (``gc.freeze``), for a process that serves only this app."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from pointsman.catalog import load_catalog
        from pointsman.config import load_config

        config_file = settings.resolved_config_file()
        config = load_config(config_file)
        gw = gateway_settings or config.section("gateway", GatewaySettings)
        cat = catalog or load_catalog(config_file)
        rank, router = ranker, default_router or config.routing.default_router or _shipped_default_router()
        measured = await _open_stats(stats, settings, config, cat)
        if rank is None:
            from pointsman.gateway.ranker import build_ranker

            latency = measured.latency if measured is not None else None
            rank, router, warm = build_ranker(
                cat, config, gw.fallback_depth, latency=latency, torch_threads=settings.scorer_torch_threads
            )
            await asyncio.to_thread(warm)  # load the scorer now, off the event loop, not on request one
        bill = billing or load_billing(gw.billing, settings, config)
        if isinstance(bill, LedgerBilling):
            bill.start_sweeper()  # returns the holds of requests whose gateway died mid-request
        executor = ThreadPoolExecutor(max_workers=gw.scorer_threads, thread_name_prefix="pointsman-scorer")
        transport = LeanTransport(max_connections=gw.max_connections)
        client = CookielessClient(timeout=gw.timeouts().httpx_timeout(), transport=transport, trust_env=False)
        metrics = GatewayMetrics()
        engine = FallbackEngine(
            breaker=CircuitBreaker(failure_threshold=gw.breaker_failures, cooldown_s=gw.breaker_cooldown_s),
            policy=RetryPolicy(gw.retries, gw.backoff_base_s, gw.backoff_max_s, gw.max_retry_after_s),
            timeouts=gw.timeouts(),
            metrics=metrics,
            depth=gw.fallback_depth,
        )
        endpoints = [e.name for e in cat.endpoints()]
        shared = share_breaker(engine.breaker, settings.redis_url, endpoints, interval_s=gw.breaker_sync_s)
        app.state.gateway = GatewayState(
            settings=gw,
            catalog=cat,
            resolver=Resolver(cat, rank, executor),
            client=client,
            providers=build_providers(client),
            engine=engine,
            metrics=metrics,
            billing=bill,
            executor=executor,
            default_router=router,
            telemetry=measured.telemetry if measured is not None else None,
        )
        if measured is not None:
            await measured.start(app.state.gateway.providers)
        # Everything built so far (modules, catalogue, scorer, clients) lives as long as the process. Move it out
        # of the collector's reach: a full collection then walks only what requests left behind, instead of
        # pausing every stream for ~100 ms (measured: gen-2 pauses of 57-121 ms under 64 streams before).
        # `pointsman serve` owns its process and asks for this; an app embedded in someone else's process
        # (tests, a host application) leaves the host's collector alone.
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            if measured is not None:
                await measured.aclose()
            if shared is not None:
                await shared.aclose()
            await client.aclose()
            await bill.aclose()
            executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="Pointsman gateway", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.include_router(chat.router)
    app.include_router(route.router)
    app.include_router(models.router)
    app.include_router(health.router)
    app.include_router(credits.router)
    app.include_router(admin.router)
    mount_console(app, settings)  # GET /console: the web console

    @app.exception_handler(PointsmanError)
    async def pointsman_error(request: Request, exc: PointsmanError) -> JSONResponse:
        _count_error(request, exc.code or exc.error_type)
        headers = {}
        retry_after = getattr(exc, "retry_after_s", None)
        if exc.status_code == 429 and retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return JSONResponse(exc.to_openai(), status_code=exc.status_code, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        _count_error(request, f"http_{exc.status_code}")
        body = {
            "error": {
                "message": str(exc.detail),
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        _count_error(request, "internal_error")
        message = "internal error in the Pointsman gateway; the server log has the details"
        body = {
            "error": {"message": message, "type": "server_error", "param": None, "code": "internal_error"}
        }
        return JSONResponse(body, status_code=500)

    return app


async def _open_stats(
    stats: bool | StatsSettings, settings: Settings, config: Config, catalog: Catalog
) -> StatsService | None:
    if stats is False:
        return None
    from pointsman.stats.service import open_stats
    from pointsman.stats.settings import load_stats_settings

    return await open_stats(settings, load_stats_settings(config) if stats is True else stats, catalog)


def _shipped_default_router() -> str:
    from pointsman.router_string import DEFAULT_ROUTER

    return DEFAULT_ROUTER


def _count_error(request: Request, code: str) -> None:
    state = getattr(request.app.state, "gateway", None)
    if state is not None:
        state.metrics.errors.labels(code).inc()
