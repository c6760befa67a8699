"""Run the gateway as a real server on loopback, and point a catalogue at a fake provider — for tests,
benchmarks and the offline demo.

    with running_fake_provider() as fake:
        catalog = fake_catalog(fake.base_url, {"ok@fake": "fake-model", "flaky@fake": "fake-model#fault=500"})
        app = create_app(catalog=catalog, billing=OpenAccessBilling(), gateway_settings=GatewaySettings())
        with running_gateway(app) as base_url:
            OpenAI(base_url=base_url, api_key="x", max_retries=0).chat.completions.create(...)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from pointsman.catalog import Catalog

__all__ = ["demo_config_toml", "fake_catalog", "free_port", "running_gateway"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fake_catalog(
    base_url: str,
    endpoints: Mapping[str, str],
    *,
    api_style: str = "openai",
    prices: Mapping[str, tuple[float, float]] | None = None,
    extra_providers: Mapping[str, Mapping[str, Any]] | None = None,
    qualities: Mapping[str, float] | None = None,
) -> Catalog:
    """A catalogue whose endpoints ``model@provider`` → upstream model id (with any ``#script``) are served by
    the fake provider at ``base_url``. Providers named in ``extra_providers`` get those fields instead
    (e.g. another base_url, or ``api_style = "anthropic"``). Models get ``quality_prior`` from ``qualities``
    (default 0.5) so a scorer that has never seen them can still rank them."""
    from pointsman.catalog import parse_catalog_dict

    providers: dict[str, dict[str, Any]] = {}
    models: dict[str, dict[str, Any]] = {}
    entries: dict[str, dict[str, Any]] = {}
    for name, upstream in endpoints.items():
        model, _, provider = name.rpartition("@")
        providers.setdefault(
            provider,
            {"base_url": base_url, "api_style": api_style, "ttft_prior_ms": 50.0, "itl_prior_ms": 5.0},
        )
        models.setdefault(
            model, {"context_window": 32_768, "quality_prior": (qualities or {}).get(model, 0.5)}
        )
        price_in, price_out = (prices or {}).get(name, (1.0, 2.0))
        entries[name] = {
            "upstream_model": upstream,
            "input_usd_per_mtok": price_in,
            "output_usd_per_mtok": price_out,
            "price_as_of": date(2026, 1, 1),
        }
    for provider, fields in (extra_providers or {}).items():
        providers[provider] = {**providers.get(provider, {}), **fields}
    return parse_catalog_dict({"models": models, "providers": providers, "endpoints": entries})


@contextlib.contextmanager
def running_gateway(app: FastAPI, *, port: int | None = None, uvloop: bool = True) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a background thread; yields the OpenAI base URL (``.../v1``)."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop" if uvloop else "asyncio",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="pointsman-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the gateway exited during startup; see the log above")
        if time.monotonic() > deadline:
            raise TimeoutError("the gateway did not start within 30 s")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(30)
    if thread.is_alive():  # (not raised over an error from the block: that one is the story)
        raise RuntimeError(
            "the gateway did not stop within 30 s: a request still running, or the lifespan's shutdown hangs"
        )


def demo_config_toml(base_url: str, *, catalog: Catalog | None = None) -> str:
    """A config file that points every provider of the shipped catalogue (or ``catalog``) at the fake
    provider at ``base_url``, keyless and enabled: the whole pipeline — routing over the real catalogue,
    fallbacks, streaming — runs offline. The fake answers both API styles, so each provider keeps its own."""
    from pointsman.catalog import load_catalog

    catalog = catalog or load_catalog()
    lines = [
        "# Offline demo: every provider is served by `pointsman fake-provider`.",
        "# Start the gateway with: pointsman serve --open-access --config THIS_FILE",
        "",
    ]
    for name in sorted(catalog.provider_table):
        lines += [
            f'[catalog.providers."{name}"]',
            f'base_url = "{base_url}"',
            'api_key_env = ""',
            "enabled = true",
            "",
        ]
    return "\n".join(lines)
