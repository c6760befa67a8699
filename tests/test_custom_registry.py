"""Deploying, listing and deleting custom routers; ``router@NAME`` resolution in ``pointsman.router.Router``; and
label-free calibration of the cost weight on a prompt sample."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from _custom_fakes import config_toml
from typer.testing import CliRunner

from pointsman.catalog import load_catalog
from pointsman.custom.calibrate import calibrate_cost_weight
from pointsman.custom.registry import deploy, deployed_names, find_deployed, list_routers, undeploy
from pointsman.custom.store import CustomStore
from pointsman.errors import DataError, NoCandidatesError, ScorerError, UnknownNameError
from pointsman.router import Router
from pointsman.scorer.base import Prediction, Scorer


def trained_router(data: Path, name: str, models: Sequence[str]) -> Path:
    """A custom router directory with a (tiny, random) checkpoint, as 'custom train' leaves it."""
    from pointsman.scorer.checkpoint import save_model
    from pointsman.scorer.model import LatentScorer, ModelConfig

    CustomStore.open(data, name, create=True).close()
    cfg = ModelConfig(
        models=list(models), sources=["s"], default_source="s", n_embd=8, d_model=8, n_head=2, n_layer=1
    )
    return save_model(LatentScorer(cfg), data / "custom" / name / "model", meta={"models": list(models)})


def test_deploy_needs_a_trained_router_and_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError, match="unknown custom router 'nobody'"):
        deploy("nobody", data_dir=tmp_path)
    CustomStore.open(tmp_path, "fresh", create=True).close()
    with pytest.raises(ScorerError, match="run 'pointsman custom train --name fresh' first"):
        deploy("fresh", data_dir=tmp_path)


def test_deploy_find_redeploy_undeploy(tmp_path: Path) -> None:
    trained_router(tmp_path, "bot", ["m1", "m2"])
    assert find_deployed("bot", data_dir=tmp_path) is None
    record = deploy("bot", data_dir=tmp_path)
    assert record["models"] == ["m1", "m2"]
    assert deployed_names(data_dir=tmp_path) == ["bot"]
    first = find_deployed("bot", data_dir=tmp_path)
    assert first is not None and first.name == "bot" and first.models == ["m1", "m2"]
    assert find_deployed("bot", data_dir=tmp_path) is first  # cached
    path = tmp_path / "custom" / "bot" / "deployed.json"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert find_deployed("bot", data_dir=tmp_path) is not first  # a redeploy is picked up
    with pytest.raises(UnknownNameError, match="unknown model 'm3'"):
        first.predict(["hi"], ["m3"])
    assert undeploy("bot", data_dir=tmp_path) and not undeploy("bot", data_dir=tmp_path)
    assert find_deployed("bot", data_dir=tmp_path) is None
    assert find_deployed("../../etc", data_dir=tmp_path) is None  # not a router name: not ours


def test_damaged_deployment_says_how_to_fix_it(tmp_path: Path) -> None:
    trained_router(tmp_path, "dmg", ["a", "b"])
    deploy("dmg", data_dir=tmp_path)
    (tmp_path / "custom" / "dmg" / "deployed.json").write_text("{")
    with pytest.raises(ScorerError, match="redeploy with 'pointsman custom deploy dmg'"):
        find_deployed("dmg", data_dir=tmp_path)


def test_router_resolves_deployed_names_and_lists_them_when_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POINTSMAN_DATA_DIR", str(tmp_path))
    trained_router(tmp_path, "helpdesk", ["gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"])
    deploy("helpdesk")
    router = Router()
    assert router._scorer_for("helpdesk").name == "helpdesk"
    with pytest.raises(UnknownNameError, match="did you mean 'helpdesk'"):
        router.rank("hello", "router@helpdes|q:1")


def test_cli_list_deploy_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pointsman.cli.app import build_app

    monkeypatch.setenv("POINTSMAN_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    assert "no custom routers yet" in runner.invoke(build_app(), ["custom", "list"]).stdout
    trained_router(tmp_path, "r1", ["a", "b"])
    result = runner.invoke(build_app(), ["custom", "deploy", "r1"])
    assert result.exit_code == 0 and "router@r1|q:1" in result.stdout
    info = list_routers(data_dir=tmp_path)
    assert [(r.name, r.trained, r.deployed) for r in info] == [("r1", True, True)]
    result = runner.invoke(build_app(), ["custom", "delete", "r1"], input="n\n")
    assert result.exit_code != 0 and (tmp_path / "custom" / "r1").exists()
    result = runner.invoke(build_app(), ["custom", "delete", "r1", "--yes"])
    assert result.exit_code == 0 and not (tmp_path / "custom" / "r1").exists()
    result = runner.invoke(build_app(), ["custom", "status", "--name", "r1"])
    assert result.exit_code != 0


# --- calibration --------------------------------------------------------------------------------------------


class Toy(Scorer):
    """strong-model: 0.9 everywhere; cheap-model: the number written in the prompt ("q=0.35")."""

    name = "toy"

    @property
    def models(self) -> list[str]:
        return ["cheap-model", "strong-model"]

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        self.check_models(models)
        cheap = [float(re.search(r"q=([\d.]+)", p).group(1)) for p in prompts]  # type: ignore[union-attr]
        q = np.array([[c if m == "cheap-model" else 0.9 for m in models] for c in cheap])
        return Prediction(list(models), q)


def toy_router(tmp_path: Path) -> Router:
    (tmp_path / "config.toml").write_text(config_toml("http://127.0.0.1:9/v1"))
    return Router(catalog=load_catalog(tmp_path / "config.toml"), scorers={"toy": Toy()})


PROMPTS = [f"question {i} q={0.025 + 0.05 * i:.3f}" for i in range(20)]


def strong_share(c: float) -> float:
    """By hand: strong (blended $15/M) beats cheap ($0.1/M) iff 0.9 - 15c > q - 0.1c."""
    return sum(1 for i in range(20) if 0.025 + 0.05 * i < 0.9 - 14.9 * c) / 20


def test_calibration_finds_the_smallest_cost_weight_within_the_share(tmp_path: Path) -> None:
    engine = toy_router(tmp_path)
    result = calibrate_cost_weight(PROMPTS, "router@toy|q:1", max_strong_share=0.3, engine=engine)
    assert result.strong_model == "strong-model"
    assert result.strong_share == strong_share(result.cost_weight) <= 0.3
    assert strong_share(result.cost_weight * 0.99) > 0.3  # tight: a little less cost weight breaks the limit
    assert result.router == f"router@toy|q:1|c:{result.cost_weight!r}".replace(".0|", "|")
    assert result.shares["strong-model"] + result.shares["cheap-model"] == pytest.approx(1.0)
    loose = calibrate_cost_weight(PROMPTS, "router@toy|q:1", max_strong_share=0.95, engine=engine)
    assert loose.cost_weight <= 1e-9 and loose.strong_share == 0.9  # no cost pressure needed


def test_calibration_errors(tmp_path: Path) -> None:
    engine = toy_router(tmp_path)
    with pytest.raises(DataError, match=r"within 0\.\.1"):
        calibrate_cost_weight(PROMPTS, "router@toy|q:1", max_strong_share=1.5, engine=engine)
    with pytest.raises(DataError, match="no prompts"):
        calibrate_cost_weight([" "], "router@toy|q:1", max_strong_share=0.3, engine=engine)
    with pytest.raises(DataError, match=r"cost weight of a 'router@\.\.\.' link"):
        calibrate_cost_weight(PROMPTS, "router@toy|lowest-cost", max_strong_share=0.3, engine=engine)
    with pytest.raises(NoCandidatesError, match="needs at least two"):
        calibrate_cost_weight(
            PROMPTS, "router@toy|q:1|models:cheap-model", max_strong_share=0.3, engine=engine
        )
    with pytest.raises(DataError, match=r"of the prompts go to cheap-model"):
        calibrate_cost_weight(
            PROMPTS, "router@toy|q:1", max_strong_share=0.0, engine=engine, strong="cheap-model"
        )
