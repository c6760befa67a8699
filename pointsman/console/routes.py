"""``GET /console``: the web console's pages, server-rendered HTML with inline SVG charts.

    /console/endpoints   TTFT/ITL over time per endpoint (region filter), prices, error rates
    /console/router      quality–cost curves from the newest evaluation report; traffic share per endpoint
    /console/spend       balance, spend by model and by day, recent requests (admins: ?account=NAME)
    /console/try         prompt + router string → the ranked endpoints and the reasons (a dry run)
    /console/login       a form that keeps the key in an HttpOnly cookie; /console/logout forgets it

Every page needs an account's API key or an admin key (header or cookie); without one it answers 401 with the
login form. Errors are pages too, with the status of the ``PointsmanError`` behind them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote

import anyio.to_thread
import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from pointsman.console import charts
from pointsman.console.auth import COOKIE, Viewer, console_key, identify, resolve_account
from pointsman.console.context import ConsoleContext
from pointsman.console.endpoints import (
    attempts_by_endpoint,
    build_view,
    catalogue_prices,
    read_samples,
    stats_tables_ready,
)
from pointsman.errors import AuthenticationError, InvalidRequestError, PointsmanError
from pointsman.gateway.dependencies import GatewayState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from pointsman.console.reports import CurveReport
    from pointsman.settings import Settings

__all__ = ["mount_console", "router"]

router = APIRouter(prefix="/console", include_in_schema=False)

RANGES = [(6.0, "6 hours"), (24.0, "24 hours"), (168.0, "7 days"), (720.0, "30 days")]
MAX_FORM_BYTES = 64 * 1024


def mount_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console from ``app`` and build its context in the app's lifespan (after the gateway's)."""
    from pointsman.config import load_config

    app.include_router(router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with inner(app_) as value:
            config = load_config(settings.resolved_config_file())
            console = ConsoleContext.build(settings, config, app_.state.gateway)
            app_.state.console = console
            try:
                yield value
            finally:
                console.close()

    app.router.lifespan_context = lifespan


# ---- rendering ----------------------------------------------------------------------------------------------


def _usd(pico: int | None) -> str:
    if pico is None:
        return "–"
    from pointsman.ledger.money import format_usd

    return format_usd(int(pico))


def _price(value: Decimal | float | None) -> str:
    return "–" if value is None else f"${float(value):,.4g}"


def _dollars(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"${value:.6f}" if value < 0.01 else f"${value:,.4f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return (
        f"{value / 1000:.2f} s"
        if value >= 10_000
        else f"{value:.0f} ms"
        if value >= 10
        else f"{value:.1f} ms"
    )


def _seconds(value: float | None) -> str:
    return "–" if value is None else _ms(value * 1000)


def _short_usd(value: float) -> str:
    """Axis and bar labels: enough digits for fractions of a cent."""
    if value <= 0:
        return "$0"
    if value >= 1:
        return f"${value:,.2f}"
    digits = max(2, 1 - math.floor(math.log10(value)))  # two significant digits
    return f"${value:.{digits}f}".rstrip("0").rstrip(".")


def _requests(n: int) -> str:
    return f"{n} request" if n == 1 else f"{n} requests"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _when(value: datetime | None) -> str:
    return "–" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short_when(value: datetime | None) -> str:
    return "–" if value is None else value.astimezone(UTC).strftime("%m-%d %H:%M")


def _epoch(value: float) -> str:
    return _when(datetime.fromtimestamp(value, UTC))


@functools.cache
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pointsman.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        usd=_usd,
        price=_price,
        dollars=_dollars,
        ms=_ms,
        seconds=_seconds,
        pct=_pct,
        num=_num,
        when=_when,
        short_when=_short_when,
        epoch=_epoch,
    )
    return env


# The pages run no script at all and load only the gateway's own stylesheet; forms post back to the console;
# no other site may frame them (the login form) and nothing is cached (balances, spend).
PAGE_HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    defaults = {"viewer": None, "panel": "", "title": "Console", "account_query": ""}
    html = _templates().get_template(template).render(**{**defaults, **context})
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def _login_page(request: Request, message: str | None, status: int) -> HTMLResponse:
    next_path = request.url.path if request.url.path.startswith("/console/") else "/console/endpoints"
    if request.url.query and request.method == "GET":
        next_path += "?" + request.url.query
    return _page("login.html", status, title="Log in", message=message, next=next_path)


def _state(request: Request) -> tuple[GatewayState, ConsoleContext]:
    return request.app.state.gateway, request.app.state.console


Handler = Callable[[Viewer], Awaitable[Response]]


async def _guarded(request: Request, panel: str, handler: Handler) -> Response:
    """Authenticate (401 → login form), run ``handler``, and turn a ``PointsmanError`` into an error page."""
    state, _ = _state(request)
    try:
        viewer = await identify(state, console_key(request))
    except AuthenticationError as exc:
        return _login_page(request, exc.message if console_key(request) else None, 401)
    try:
        return await handler(viewer)
    except PointsmanError as exc:
        return _page(
            "error.html",
            exc.status_code,
            viewer=viewer,
            panel=panel,
            title=_ERROR_TITLES.get(exc.status_code, "Error"),
            message=exc.message,
        )


_ERROR_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 429: "Slow down"}


def _account_query(request: Request) -> str:
    account = request.query_params.get("account")
    return f"?account={quote(account)}" if account else ""


# ---- pages --------------------------------------------------------------------------------------------------


@router.get("")
@router.get("/")
async def index() -> RedirectResponse:
    return RedirectResponse("/console/endpoints", status_code=303)


@router.get("/static/console.css")
async def stylesheet() -> Response:
    css = resources.files("pointsman.console").joinpath("static/console.css").read_text(encoding="utf-8")
    return Response(css, media_type="text/css", headers={"cache-control": "max-age=3600"})


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    return _page(
        "login.html", title="Log in", message=None, next=_safe_next(request.query_params.get("next"))
    )


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    key = form.get("key", "").strip()
    state, _ = _state(request)
    try:
        await identify(state, key or None)
    except AuthenticationError as exc:
        return _page(
            "login.html", 401, title="Log in", message=exc.message, next=_safe_next(form.get("next"))
        )
    response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
    response.set_cookie(
        COOKIE,
        key,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/console",
    )
    return response


@router.post("/logout")
async def logout() -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(COOKIE, path="/console")
    return response


@router.get("/endpoints")
async def endpoints_page(request: Request) -> Response:
    async def handler(viewer: Viewer) -> Response:
        state, console = _state(request)
        region = request.query_params.get("region") or None
        hours = _hours(request.query_params.get("hours"), console.settings.window_hours)
        since = datetime.now(UTC) - timedelta(hours=hours)
        engine = console.engine
        problem: str | None = None
        truncated: str | None = None
        view = None
        if engine is None:
            problem = (
                "No benchmark runs yet — this gateway has no database to read them from. Run "
                "`pointsman bench run` (it writes to the default database) or set POINTSMAN_DATABASE_URL, "
                "then restart the gateway."
            )
        elif not await anyio.to_thread.run_sync(stats_tables_ready, engine):
            problem = (
                "No benchmark runs yet — the database has no stats tables. Run `pointsman db upgrade`, then "
                "`pointsman bench run`."
            )
        else:
            limit = console.settings.max_samples
            samples, regions, runs, last_run = await anyio.to_thread.run_sync(
                functools.partial(read_samples, engine, since=since, region=region, limit=limit)
            )
            if len(samples) >= limit:
                truncated = (
                    f"Showing the newest {limit:,} samples of the range (from {_when(samples[0].at)} UTC); "
                    "choose a shorter range or a region to see all, or raise [console] max_samples."
                )
            view = build_view(
                samples, regions, runs, last_run, state.catalog, attempts_by_endpoint(state.metrics)
            )
        context: dict[str, Any] = {
            "viewer": viewer,
            "panel": "endpoints",
            "title": "Endpoints",
            "account_query": _account_query(request),
            "region": region,
            "regions": view.regions if view else [],
            "hours": hours,
            "ranges": _ranges(hours),
            "range_label": dict(_ranges(hours)).get(hours, f"{hours:g} hours"),
            "problem": problem,
            "truncated": truncated,
            "view": view,
            "catalogue": catalogue_prices(state.catalog),
            "ttft_chart": None,
            "itl_chart": None,
        }
        if view is not None and view.ttft:
            context["ttft_chart"] = _latency_chart("ttft", "Time to first token", view.ttft)
        if view is not None and view.itl:
            context["itl_chart"] = _latency_chart("itl", "Inter-token latency", view.itl)
        return _page("endpoints.html", **context)

    return await _guarded(request, "endpoints", handler)


def _latency_chart(name: str, title: str, series: dict[str, list[tuple[float, float]]]) -> Any:
    return charts.line_chart(
        name,
        [charts.Series(endpoint, points) for endpoint, points in series.items()],
        title=f"{title} per endpoint (median per benchmark run or traffic interval)",
        x_label="time (UTC)",
        y_label="milliseconds",
        x_time=True,
        y_format=lambda v: f"{v:g}",
    )


@router.get("/router")
async def router_page(request: Request) -> Response:
    async def handler(viewer: Viewer) -> Response:
        from pointsman.console.reports import custom_router_name
        from pointsman.console.spend import read_spend

        state, console = _state(request)
        account = await resolve_account(viewer, request.query_params.get("account"))
        report: CurveReport | None = None
        report_error = None
        paths = await anyio.to_thread.run_sync(console.report_paths)
        chosen = next((p for p in paths if str(p) == request.query_params.get("report")), None)
        active_scorer = _active_scorer(state.default_router)
        try:
            if chosen is not None:
                report = await anyio.to_thread.run_sync(console.reports.get, chosen)
            else:
                report = await anyio.to_thread.run_sync(
                    functools.partial(_default_report, console, paths, active_scorer)
                )
        except PointsmanError as exc:
            report_error = exc.message
        custom_name = custom_router_name(report.path, console.data_dir) if report is not None else None
        context: dict[str, Any] = {
            "viewer": viewer,
            "panel": "router",
            "title": "Router",
            "account_query": _account_query(request),
            "account_param": request.query_params.get("account"),
            "default_router": state.default_router,
            "active_scorer": active_scorer,
            "active_names": {active_scorer},
            "report": report,
            "report_paths": [str(p) for p in paths],
            "custom_name": custom_name,
            "report_error": report_error,
            "reports_dir": console.data_dir / "reports",
            "custom_dir": console.data_dir / "custom",
            "base_url": str(request.base_url).rstrip("/"),
            "curve_chart": None,
            "traffic_chart": None,
            "traffic_note": None,
        }
        if report is not None and report.datasets:
            wanted = request.query_params.get("dataset")
            dataset = next((d for d in report.datasets if d.name == wanted), report.datasets[0])
            context["dataset"] = dataset
            labels = {r.name: _router_label(r.name, custom_name) for r in dataset.routers}
            active = {
                n
                for n in labels
                if n == active_scorer or (n == CUSTOM_ROUTER and custom_name == active_scorer)
            }
            context["labels"] = labels
            context["active_names"] = active
            context["active_in_report"] = bool(active)
            context["curve_chart"] = _curve_chart(dataset, labels, active)
        if account is not None and viewer.ledger is not None:
            spend = await anyio.to_thread.run_sync(
                functools.partial(read_spend, viewer.ledger, account[0], days=1, recent=1)
            )
            traffic = spend.traffic
            context["traffic_note"] = f"Settled requests of account {account[1]}, all time."
        else:
            attempts = attempts_by_endpoint(state.metrics)
            traffic = sorted(
                ((e, n - failed) for e, (n, failed) in attempts.items() if n - failed > 0),
                key=lambda t: (-t[1], t[0]),
            )
            context["traffic_note"] = "Answered requests through this gateway since it started (open access)."
        total = sum(n for _, n in traffic)
        if total:
            context["traffic_chart"] = charts.bar_chart(
                "traffic",
                [charts.Bar(e, n / total, f"({_requests(n)})") for e, n in traffic],
                title=f"Share of {total} requests per endpoint",
                value_format=_pct,
                color=charts.PALETTE[2],
            )
        return _page("router.html", **context)

    return await _guarded(request, "router", handler)


def _active_scorer(default_router: str) -> str:
    """The scorer behind the gateway's default router string (the shipped default when it names none)."""
    from pointsman.router_string import RouterStep, parse_router_string
    from pointsman.scorer.default import DEFAULT_SCORER_NAME

    try:
        first = parse_router_string(default_router).primary
    except PointsmanError:
        return DEFAULT_SCORER_NAME
    if isinstance(first, RouterStep) and first.name:
        return first.name
    return DEFAULT_SCORER_NAME


CUSTOM_ROUTER = "custom-router"  # what a custom router's own report calls it (pointsman.custom.evaluate)


def _default_report(console: ConsoleContext, paths: list[Path], active: str) -> CurveReport | None:
    """The newest report that evaluates the active router (its custom report, or one with a router of that
    name); else the newest report. A newest report that cannot be read raises (the page shows why)."""
    from pointsman.console.reports import custom_router_name

    newest_first = sorted((p for p in paths if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)
    if not newest_first:
        return None
    for path in newest_first:
        try:
            report = console.reports.get(path)
        except PointsmanError:
            continue  # a broken older report must not hide a good one; the newest is reported below
        if custom_router_name(path, console.data_dir) == active or any(
            r.name == active for d in report.datasets for r in d.routers
        ):
            return report
    return console.reports.get(newest_first[0])


def _router_label(name: str, custom_name: str | None) -> str:
    if name == CUSTOM_ROUTER and custom_name:
        return f"{custom_name} (custom)"
    return name


def _curve_chart(dataset: Any, labels: dict[str, str], active: set[str]) -> Any:
    series = []
    for r in sorted(dataset.routers, key=lambda r: r.name not in active):
        positive = [(c * 1000, q) for c, q in r.points if c > 0]
        if positive:
            is_active = r.name in active
            label = labels[r.name] + (" (active)" if is_active else "")
            series.append(charts.Series(label, positive, emphasis=is_active))
    for model, cost, quality in dataset.singles:
        if cost > 0:
            series.append(charts.Series(model, [(cost * 1000, quality)], kind="points"))
    if not series:
        return None
    return charts.line_chart(
        "quality-cost",
        series,
        title=f"Quality against cost on {dataset.name}: routers (lines) vs single models (markers)",
        x_label="cost per 1,000 prompts (USD, log scale)",
        y_label="mean quality",
        log_x=True,
        x_format=lambda v: f"${v:.3g}",
        y_format=lambda v: f"{v:.2f}",
        y_from_zero=False,
        height=360,
    )


@router.get("/spend")
async def spend_page(request: Request) -> Response:
    async def handler(viewer: Viewer) -> Response:
        from pointsman.console.spend import read_spend

        _, console = _state(request)
        account = await resolve_account(viewer, request.query_params.get("account"))
        context: dict[str, Any] = {
            "viewer": viewer,
            "panel": "spend",
            "title": "Spend",
            "account_query": _account_query(request),
            "spend": None,
            "accounts": [],
            "base_url": str(request.base_url).rstrip("/"),
        }
        if account is not None and viewer.ledger is not None:
            ledger = viewer.ledger
            spend = await anyio.to_thread.run_sync(
                functools.partial(
                    read_spend,
                    ledger,
                    account[0],
                    days=console.settings.spend_days,
                    recent=console.settings.recent_requests,
                )
            )
            context["spend"] = spend
            if viewer.is_admin:
                context["accounts"] = [a.name for a in await anyio.to_thread.run_sync(ledger.accounts)]
            if spend.by_model:
                context["by_model_chart"] = charts.bar_chart(
                    "spend-by-model",
                    [charts.Bar(m, p / 1e12, f"({_requests(n)})") for m, p, n in spend.by_model],
                    title="Spend by model",
                    value_format=lambda v: f"${v:.6f}",
                )
            context["by_day_chart"] = charts.column_chart(
                "spend-by-day",
                [charts.Bar(d.strftime("%m-%d"), p / 1e12, f"({_requests(n)})") for d, p, n in spend.by_day],
                title=f"Spend by day (UTC), last {console.settings.spend_days} days",
                value_format=_short_usd,
            )
        return _page("spend.html", **context)

    return await _guarded(request, "spend", handler)


@router.get("/try")
async def try_form(request: Request) -> Response:
    async def handler(viewer: Viewer) -> Response:
        state, _ = _state(request)
        return _try_page(request, viewer, prompt="", router_text=state.default_router)

    return await _guarded(request, "try", handler)


@router.post("/try")
async def try_submit(request: Request) -> Response:
    async def handler(viewer: Viewer) -> Response:
        state, _ = _state(request)
        form = await _form(request)
        prompt = form.get("prompt", "")
        router_text = form.get("router", "").strip() or state.default_router
        if not prompt.strip():
            return _try_page(
                request, viewer, prompt, router_text, error="type a prompt to rank endpoints for"
            )
        try:
            await state.billing.authenticate(console_key(request))  # counted like /v1/route
            resolution = await state.resolver.resolve(router_text, [{"role": "user", "content": prompt}])
        except AuthenticationError:
            raise
        except PointsmanError as exc:
            return _try_page(request, viewer, prompt, router_text, error=exc.message, status=exc.status_code)
        state.metrics.scorer_latency.observe(resolution.scorer_s)
        details = resolution.details
        plan = [c["endpoint"] for c in resolution.explain()]
        result = {
            "router": resolution.router,
            "scorer": details.get("scorer"),
            "scorer_ms": f"{resolution.scorer_s * 1000:.1f}",
            "prompt_tokens": details.get("prompt_tokens"),
            "notes": list(details.get("notes") or ()),
            "plan": plan,
            "plan_rows": [
                {"endpoint": c["endpoint"], "reason": c.get("reason", "")} for c in resolution.explain()
            ],
            "ranked": [
                {**r, "reasons": _reasons(r), "flag_text": "; ".join(str(f) for f in r.get("flags") or ())}
                for r in details.get("ranked") or ()
            ],
        }
        return _try_page(request, viewer, prompt, router_text, result=result)

    return await _guarded(request, "try", handler)


def _try_page(
    request: Request,
    viewer: Viewer,
    prompt: str,
    router_text: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    return _page(
        "try.html",
        status,
        viewer=viewer,
        panel="try",
        title="Try it",
        account_query=_account_query(request),
        prompt=prompt,
        router=router_text,
        result=result,
        error=error,
    )


def _reasons(ranked: dict[str, Any]) -> str:
    """``quality +0.812, cost -0.004, …``: the score terms of one ranked endpoint, largest first."""
    terms = ranked.get("terms") or {}
    numeric = [(m, v) for m, v in terms.items() if isinstance(v, int | float)]
    return ", ".join(f"{m} {v:+.4g}" for m, v in sorted(numeric, key=lambda t: -abs(t[1])))


# ---- helpers ------------------------------------------------------------------------------------------------


async def _form(request: Request) -> dict[str, str]:
    """A url-encoded form body (the console's forms), first value per field."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise InvalidRequestError(f"form too large (over {MAX_FORM_BYTES // 1024} KiB); shorten the prompt")
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _safe_next(value: str | None) -> str:
    """Only console paths: never redirect a login to another site."""
    if value and value.startswith("/console/") and not value.startswith("//"):
        return value
    return "/console/endpoints"


def _hours(value: str | None, default: float) -> float:
    if not value:
        return default
    try:
        hours = float(value)
    except ValueError as exc:
        raise InvalidRequestError(f"hours must be a number, got {value!r}; e.g. ?hours=24") from exc
    if not 0 < hours <= 24 * 366:
        raise InvalidRequestError(f"hours must be between 0 and {24 * 366}, got {value!r}")
    return hours


def _ranges(current: float) -> list[tuple[float, str]]:
    ranges = list(RANGES)
    if current not in dict(ranges):
        ranges.append((current, f"{current:g} hours"))
    return sorted(ranges)
