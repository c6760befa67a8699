"""``pointsman fake-provider``: a local OpenAI- and Anthropic-compatible server with scripted faults."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("fake-provider")(fake_provider)


def fake_provider(
    port: int = typer.Option(8765, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    ttft_ms: float = typer.Option(0.0, help="Time to first token, ms."),
    itl_ms: float = typer.Option(0.0, help="Time between tokens, ms."),
    tokens: int = typer.Option(16, help="Answer length in tokens."),
    require_key: str | None = typer.Option(None, help="Answer 401 unless requests send this key."),
    demo_config: Path | None = typer.Option(
        None,
        "--demo-config",
        help="Also write a config file pointing every catalogue provider at this server, for "
        "'pointsman serve --open-access --config FILE' (an offline demo of the whole pipeline).",
    ),
) -> None:
    """Serve /v1/chat/completions (OpenAI) and /v1/messages (Anthropic) with fake answers.

    Pick a fault per request with a model suffix ('fake-model#fault=429&retry_after=1') or the header
    'x-fake-script: fault=stall&after=3'. Faults: 429, 500, 503, refuse, slow_first_byte, stall, close_early,
    malformed, split, no_usage, huge_chunk. Request counts per script: GET /_fake/stats."""
    import asyncio

    import uvloop

    from pointsman.providers.fake import FakeConfig, FakeProviderServer

    config = FakeConfig(ttft_s=ttft_ms / 1000, itl_s=itl_ms / 1000, tokens=tokens, require_key=require_key)
    server = FakeProviderServer(config, host=host, port=port)
    if demo_config is not None:
        from pointsman.gateway.testing import demo_config_toml

        demo_config.write_text(demo_config_toml(server.base_url), encoding="utf-8")
        typer.echo(f"wrote {demo_config}: run 'pointsman serve --open-access --config {demo_config}'")
    typer.echo(f"fake provider on http://{host}:{port}/v1 (OpenAI: /chat/completions, Anthropic: /messages)")
    try:
        uvloop.run(server.serve_forever())
    except KeyboardInterrupt:
        pass
    finally:
        asyncio.set_event_loop(None)
