"""The whole custom-router pipeline, offline: collect from fake persona models (the cheap one is bad at SQL),
judge with a deterministic fake judge, train from a small base checkpoint, evaluate on the held-out split,
deploy, and route — in ``pointsman route``, through ``Router`` and through the gateway with the real
``openai`` client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from _custom_fakes import PersonaServer, config_toml, running_personas, tiny_base_checkpoint, write_prompts
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

NAME = "sqlbot"
ROUTER = f"router@{NAME}|q:1|c:0.01"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, PersonaServer]]:
    import torch

    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("custom-e2e")
    with running_personas() as server:
        (root / "config.toml").write_text(config_toml(server.base_url), encoding="utf-8")
        write_prompts(root / "prompts.jsonl", 40)
        tiny_base_checkpoint(root)
        yield root, server


@pytest.fixture
def cli(world: tuple[Path, PersonaServer], monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    root, _ = world
    monkeypatch.setenv("POINTSMAN_DATA_DIR", str(root / "data"))
    monkeypatch.setenv("POINTSMAN_CONFIG_FILE", str(root / "config.toml"))
    return CliRunner()


def run(cli: CliRunner, *args: str) -> str:
    from pointsman.cli.app import build_app

    result = cli.invoke(build_app(), list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_end_to_end(world: tuple[Path, PersonaServer], cli: CliRunner) -> None:
    root, server = world
    models = "strong-model@fake,cheap-model@fake"

    out = run(
        cli,
        "custom",
        "collect",
        "--name",
        NAME,
        "--prompts",
        str(root / "prompts.jsonl"),
        "--models",
        models,
        "--yes",
    )
    assert "answers:        80" in out and "cost spent" in out
    assert max(server.counts.values()) == 1 and len(server.counts) == 80

    out = run(cli, "custom", "judge", "--name", NAME, "--judge", "judge-model@fake", "--yes")
    assert "grades:         80" in out and "missing grades: 0" in out

    quick = ("--steps", "100", "--lr", "0.05", "--threads", "1", "--bootstrap", "50")  # the quick recipe
    out = run(cli, "custom", "train", "--name", NAME, "--base", str(root / "base"), *quick)
    assert "held out 8" in out and "custom-router" in out
    report = json.loads((root / "data" / "custom" / NAME / "report" / "report.json").read_text())
    dataset = report["datasets"][0]
    assert dataset["split"]["kind"] == "source test split"
    assert dataset["n_prompts"] == 8  # 20% of 40 prompts held out, never trained on
    aiq = {name: r["aiq"] for name, r in dataset["routers"].items()}
    assert aiq["custom-router"] > aiq["off-the-shelf"] + 0.05, (aiq, out)
    assert (root / "data" / "custom" / NAME / "report" / f"{NAME}-quality-cost.png").exists()

    run(cli, "custom", "deploy", NAME)
    sql = "Write an SQL query that joins refunds with payments and counts rows #999"
    french = "Translate into French: the cat and my friend #999"
    chosen = json.loads(run(cli, "route", sql, "--router", ROUTER, "--json"))
    assert chosen["chosen"] == "strong-model@fake", chosen
    assert chosen["scorer"] == NAME
    assert {r["endpoint"] for r in chosen["ranked"]} == {"strong-model@fake", "cheap-model@fake"}
    assert not any("cannot score" in n for n in chosen["notes"])
    chosen = json.loads(run(cli, "route", french, "--router", ROUTER, "--json"))
    assert chosen["chosen"] == "cheap-model@fake", chosen

    calibrated = json.loads(
        run(cli, "custom", "calibrate", "--name", NAME, "--prompts", str(root / "prompts.jsonl"),
            "--max-strong-share", "0.25", "--json")
    )  # fmt: skip
    assert calibrated["strong_model"] == "strong-model" and calibrated["strong_share"] <= 0.25
    assert calibrated["router"].startswith(f"router@{NAME}|q:1|c:")

    listed = json.loads(run(cli, "custom", "list", "--json"))
    assert listed[0]["name"] == NAME and listed[0]["deployed"] and listed[0]["trained"]


def test_gateway_routes_with_the_deployed_router(world: tuple[Path, PersonaServer], cli: CliRunner) -> None:
    """Runs after the end-to-end test has deployed the router: the gateway resolves router@NAME."""
    from openai import OpenAI

    from pointsman.catalog import load_catalog
    from pointsman.gateway.app import create_app
    from pointsman.gateway.billing import OpenAccessBilling
    from pointsman.gateway.settings import GatewaySettings
    from pointsman.gateway.testing import running_gateway

    root, server = world
    if not (root / "data" / "custom" / NAME / "deployed.json").exists():
        pytest.skip("needs test_end_to_end's deployed router (run the module, not this test alone)")
    app = create_app(
        catalog=load_catalog(root / "config.toml"),
        billing=OpenAccessBilling(),
        gateway_settings=GatewaySettings(),
    )
    with running_gateway(app) as base_url:
        client = OpenAI(base_url=base_url, api_key="x", max_retries=0)
        sql = "Write an SQL query that joins orders with refunds and counts rows #777"
        raw = client.chat.completions.with_raw_response.create(
            model=ROUTER, messages=[{"role": "user", "content": sql}]
        )
        assert raw.headers["x-pointsman-endpoint"] == "strong-model@fake"
        assert raw.parse().choices[0].message.content.startswith("CORRECT")
        assert server.counts[("strong", sql)] == 1 and server.counts[("cheap", sql)] == 0
        french = "Translate into French: good morning and a cold winter #777"
        raw = client.chat.completions.with_raw_response.create(
            model=ROUTER, messages=[{"role": "user", "content": french}]
        )
        assert raw.headers["x-pointsman-endpoint"] == "cheap-model@fake"
