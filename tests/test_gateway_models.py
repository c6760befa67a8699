"""``GET /v1/models`` through the real ``openai`` client: the catalogue's models and endpoints, and every
router a client can name (the default router, the built-in scorers, the custom routers deployed now)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from _gateway_stack import gateway_stack

from pointsman.custom.registry import deploy, undeploy
from pointsman.custom.store import CustomStore
from pointsman.gateway.ranker import ranker_from_router
from pointsman.gateway.testing import fake_catalog
from pointsman.providers.fake import running_fake_provider
from pointsman.router import Router
from pointsman.scorer.default import scorer_by_name
from pointsman.settings import Settings

pytestmark = pytest.mark.timeout(120)

DEFAULT = "router@q:1|c:0.5"
ENDPOINTS = {"alpha@fake": "fake-model", "beta@fake": "fake-model"}


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with running_fake_provider() as fake:  # a catalogue to list; nothing is sent upstream
        ranker = ranker_from_router(
            Router(fake_catalog(fake.base_url, ENDPOINTS), scorer_by_name("prior")), 3
        )
        with gateway_stack(ENDPOINTS, fake=fake, ranker=ranker, default_router=DEFAULT) as stack:
            yield stack.client(timeout=20)


def listing(client: openai.OpenAI) -> dict[str, dict[str, Any]]:
    out = {}
    for m in client.models.list():
        assert m.object == "model" and isinstance(m.created, int) and m.owned_by, m
        assert m.model_extra is not None
        out[m.id] = m.model_extra["pointsman"]
    return out


def deployed_router(name: str, models: list[str]) -> Path:
    """A trained (tiny, random) custom router ``name``, deployed in the gateway's data directory."""
    from pointsman.scorer.checkpoint import save_model
    from pointsman.scorer.model import LatentScorer, ModelConfig

    data = Settings().data_dir
    CustomStore.open(data, name, create=True).close()
    cfg = ModelConfig(
        models=models, sources=["s"], default_source="s", n_embd=8, d_model=8, n_head=2, n_layer=1
    )
    save_model(LatentScorer(cfg), data / "custom" / name / "model", meta={"models": models})
    deploy(name, data_dir=data)
    return data / "custom" / name


def test_lists_models_endpoints_and_routers_in_openai_shape(client: openai.OpenAI) -> None:
    data = listing(client)
    assert data["alpha"]["kind"] == "model"
    assert data["alpha@fake"]["kind"] == "endpoint" and data["alpha@fake"]["provider"] == "fake"
    routers = {k: v for k, v in data.items() if v["kind"] == "router"}
    assert routers[DEFAULT] == {"kind": "router", "router": "default", "default": True, "status": "available"}
    assert routers["router@prior"]["source"] == "builtin" and routers["router@neural"]["default"] is False
    assert all(k.startswith("router@") for k in routers)


def test_a_listed_router_can_be_named_in_a_request(client: openai.OpenAI) -> None:
    # a dry run (nothing is sent upstream) with each built-in router id as the model
    import httpx

    for name in ("router@prior", DEFAULT):
        resp = httpx.post(
            str(client.base_url) + "route",
            json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
            timeout=20,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["candidates"]


def test_deployed_custom_router_is_listed_until_undeployed(client: openai.OpenAI) -> None:
    directory = deployed_router("models-list-bot", ["alpha", "beta"])
    try:
        entry = listing(client)["router@models-list-bot"]
        assert entry["source"] == "custom" and entry["models"] == ["alpha", "beta"]
        assert undeploy("models-list-bot", data_dir=Settings().data_dir)
        assert "router@models-list-bot" not in listing(client), "an undeploy shows without a restart"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_damaged_deployment_is_left_out_and_logged(
    client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    directory = Settings().data_dir / "custom" / "models-list-broken"
    directory.mkdir(parents=True)
    try:
        (directory / "deployed.json").write_text(json.dumps({"name": "models-list-broken"}))  # no models
        with caplog.at_level("WARNING", logger="pointsman.gateway"):
            data = listing(client)
        assert "router@models-list-broken" not in data
        assert DEFAULT in data, "the rest of the listing is unaffected"
        assert any(
            "models-list-broken" in r.getMessage() and "damaged" in r.getMessage() for r in caplog.records
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
