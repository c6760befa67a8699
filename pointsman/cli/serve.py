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
    access_log: bool = typer.Option(
        False, help="Log one line per request (paths and statuses, never bodies)."
    ),
) -> None:
    """Serve /v1/chat/completions, /v1/route, /v1/models, /metrics and /healthz."""
    import uvicorn

    from pointsman.gateway.app import create_app
    from pointsman.gateway.billing import OpenAccessBilling
    from pointsman.settings import Settings

    settings = Settings(config_file=config) if config is not None else Settings()
    app = create_app(settings, billing=OpenAccessBilling() if open_access else None)
    uvicorn.run(
        app, host=host, port=port, loop="uvloop", http="httptools", access_log=access_log, log_level="info"
    )
