"""``pointsman serve``: run the OpenAI-compatible gateway on uvicorn."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0 for all)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    config: Path | None = typer.Option(
        None, "--config", help="TOML config file (catalogue overrides, [gateway])."
    ),
    open_access: bool = typer.Option(
        False,
        "--open-access",
        help="No accounts or credit: anyone may call and nothing is charged. For local demos only.",
    ),
    keep_alive_s: int = typer.Option(
        30,
        "--keep-alive-s",
        help="How long an idle client connection stays open; longer than clients' own idle expiry (httpx: 5 s) "
        "so a reused connection is never closed under a request.",
    ),
    access_log: bool = typer.Option(
        False, help="Log one line per request (paths and statuses, never bodies)."
    ),
    stats: bool = typer.Option(
        True,
        help="Measure latency: record each routed stream's TTFT/ITL, rank on measured figures, and run "
        "scheduled benchmarks when the config's [stats] sets schedule = true.",
    ),
) -> None:
    """Serve /v1/chat/completions, /v1/route, /v1/models, /metrics and /healthz."""
    import uvicorn

    from pointsman.catalog import load_catalog
    from pointsman.config import load_config
    from pointsman.gateway.app import create_app
    from pointsman.gateway.billing import OpenAccessBilling, load_billing
    from pointsman.gateway.settings import GatewaySettings
    from pointsman.settings import Settings
    from pointsman.stats.settings import load_stats_settings

    # Everything a config mistake can break is built here, so it is reported as a one-line error.
    settings = Settings(config_file=config) if config is not None else Settings()
    loaded = load_config(settings.resolved_config_file())
    gateway_settings = loaded.section("gateway", GatewaySettings)
    catalog = load_catalog(settings.resolved_config_file())
    billing = OpenAccessBilling() if open_access else load_billing(gateway_settings.billing, settings, loaded)
    measure = load_stats_settings(loaded) if stats else False
    app = create_app(
        settings,
        gateway_settings=gateway_settings,
        catalog=catalog,
        billing=billing,
        stats=measure,
        freeze_gc=True,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=access_log,
        log_level="info",
        timeout_keep_alive=keep_alive_s,
    )
