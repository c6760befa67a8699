"""The harness end to end on the repo's fixture: splits, references, metrics, reports, plots, the CLI, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from _eval_helpers import words_embedder

from pointsman.data import load_routing
from pointsman.errors import DataError, UnknownNameError
from pointsman.evaluation.costs import load_prices
from pointsman.evaluation.harness import EvalOptions, evaluate_dataset, evaluate_files
from pointsman.evaluation.plots import DPI, FIGSIZE
from pointsman.evaluation.report import write_report

FIXTURES = Path(__file__).parent / "fixtures"
DATA = FIXTURES / "eval_routing.jsonl"
PRICES = FIXTURES / "eval_prices.json"
FAST = {"knn": {"embedder": words_embedder}, "mf": {"embedder": words_embedder}}


def options(**kw: object) -> EvalOptions:
    base: dict[str, object] = {"bootstrap": 50, "router_options": FAST}
    base.update(kw)
    return EvalOptions(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    (res,) = evaluate_files(
        [DATA], prices=load_prices([PRICES]), prices_origin=str(PRICES), options=options()
    )
    return res


def test_every_prompt_is_evaluated_once_by_routers_that_never_saw_it(result) -> None:  # type: ignore[no-untyped-def]
    assert result.split.kind == "k-fold"
    assert result.n_prompts == 48 and result.n_incomplete == 0
    test_rows = sorted(i for fold in result.split.folds for i in fold.test)
    assert test_rows == list(range(48))


def test_references_and_routers_are_consistent(result) -> None:  # type: ignore[no-untyped-def]
    assert set(result.routers) == {"random", "best-single", "knn", "mf"}
    assert result.candidates == ["big", "mid", "small"]
    assert result.best_single == "big"
    assert result.c_min == pytest.approx(result.singles_cost["small"])
    assert result.c_max == pytest.approx(result.singles_cost["big"])
    oracle = result.references["oracle"]
    hull = result.references["singles-hull"]
    for r in result.routers.values():
        assert r.aiq <= oracle.aiq + 1e-9
        assert r.aiq_ci[0] <= r.aiq <= r.aiq_ci[1] or r.aiq_ci[0] - 1e-9 <= r.aiq
        assert 0 <= r.apgr <= 1 and r.apgr <= oracle.apgr
        assert 0 <= r.cpt50 <= r.cpt80 <= 1
        assert len(r.points_cost) == len(r.lambdas) == 62
        assert r.aiq_gain == pytest.approx(r.aiq - hull.aiq)
        assert r.aiq_gain_ci is not None and r.aiq_gain_ci[0] <= r.aiq_gain_ci[1]
    assert hull.aiq <= oracle.aiq
    assert hull.apgr == 0.5
    # The oracle reaches the best single's quality for a fraction of its cost on this fixture.
    assert oracle.cost_to_match_best_single < 0.5 * result.c_max
    # The pair falls back to the best candidate and the cheapest other one.
    assert result.pair == ("big", "small")


def test_knn_beats_random_on_an_easy_split(result) -> None:  # type: ignore[no-untyped-def]
    assert result.routers["knn"].aiq > result.routers["random"].aiq
    assert result.routers["knn"].apgr > 0.55


def test_report_files_and_plots(result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    out = tmp_path / "report"
    written = write_report([result], out, {"command": "test", "prices": "fixture", "bootstrap": 50})
    names = sorted(p.name for p in written)
    assert names == ["eval_routing-pgr.png", "eval_routing-quality-cost.png", "report.json", "report.md"]
    for png in ("eval_routing-pgr.png", "eval_routing-quality-cost.png"):
        path = out / png
        assert path.stat().st_size > 10_000
        with Image.open(path) as image:
            assert image.size == (round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI))
    report = json.loads((out / "report.json").read_text())
    (d,) = report["datasets"]
    assert d["routers"]["knn"]["aiq"] == pytest.approx(result.routers["knn"].aiq)
    assert d["references"]["oracle"]["pgr_curve"]["pgr"][-1] == pytest.approx(1.0)
    assert d["split"]["kind"] == "k-fold"
    md = (out / "report.md").read_text()
    assert d["routers"]["knn"]["aiq_minus_singles_hull"] == pytest.approx(result.routers["knn"].aiq_gain)
    for name in (
        "| knn |",
        "| *oracle* |",
        "| big |",
        "5-fold cross-validation",
        "AIQ = area under",
        "AIQ − mixing",
    ):
        assert name in md


def test_nothing_half_written_when_a_plot_fails(
    result, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import pointsman.evaluation.plots as plots

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots, "plot_pgr", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report([result], tmp_path / "out", {})
    assert list(tmp_path.iterdir()) == []


def test_out_dir_that_is_not_empty_is_refused(result, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not an empty directory"):
        write_report([result], tmp_path, {})
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_source_test_split_and_train_extra(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    for i, row in enumerate(rows):
        row["split"] = "test" if i % 4 == 0 else "train"
    split_file = tmp_path / "split.jsonl"
    split_file.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    extra = tmp_path / "extra.jsonl"
    extra_rows = [dict(r, source="other", id="other/" + r["id"], split="train") for r in rows]
    extra.write_text("\n".join(json.dumps(r) for r in extra_rows) + "\n")
    seen: list[int] = []

    from pointsman.baselines.best_single import BestSingleScorer

    original = BestSingleScorer.fit.__func__  # type: ignore[attr-defined]

    def spy(cls, records, **kw):  # type: ignore[no-untyped-def]
        test_prompts = {r["prompt"] for r in rows if r["split"] == "test"}
        assert not any(r.prompt in test_prompts for r in records), "trained on a test prompt"
        seen.append(sum(r.source == "other" for r in records))
        return original(cls, records, **kw)

    BestSingleScorer.fit = classmethod(spy)  # type: ignore[method-assign,assignment]
    try:
        (res,) = evaluate_files(
            [split_file],
            prices=load_prices([PRICES]),
            prices_origin="fixture",
            options=options(routers=["best-single"]),
            train_extra_paths=[extra],
        )
    finally:
        BestSingleScorer.fit = classmethod(original)  # type: ignore[method-assign,assignment]
    assert res.split.kind == "source test split"
    assert res.n_prompts == 12
    test_prompts = {r["prompt"] for r in rows if r["split"] == "test"}
    held_out = sum(r["prompt"] in test_prompts for r in extra_rows)
    assert held_out >= 12
    assert seen == [48 - held_out]  # extra rows whose prompt is a test prompt are held out


def test_explicit_pair_and_candidates() -> None:
    records = load_routing(DATA)
    res = evaluate_dataset(
        records,
        name="fx",
        path=str(DATA),
        prices=load_prices([PRICES]),
        prices_origin="fixture",
        options=options(routers=["best-single"], candidates=["big", "mid"], pair=("big", "mid"), bootstrap=0),
    )
    assert res.candidates == ["big", "mid"] and res.pair == ("big", "mid")
    assert res.routers["best-single"].aiq_ci is None


def test_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    records = load_routing(DATA)
    prices = load_prices([PRICES])
    kw = {"name": "fx", "path": str(DATA), "prices": prices, "prices_origin": str(PRICES)}
    with pytest.raises(DataError, match="candidate 'huge' has no labels in this file") as info:
        evaluate_dataset(records, options=options(candidates=["big", "huge"]), **kw)  # type: ignore[arg-type]
    assert str(DATA) in info.value.message
    cheap = {"big": prices["big"]}
    with pytest.raises(DataError, match=r"no price for model\(s\) 'mid'"):
        evaluate_dataset(records, options=options(candidates=["big", "mid"]), **{**kw, "prices": cheap})  # type: ignore[arg-type]
    with pytest.raises(DataError, match="only 1 labelled model"):
        evaluate_dataset(records, options=options(), **{**kw, "prices": cheap})  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError, match="unknown router 'knm'; did you mean 'knn'"):
        evaluate_dataset(records, options=options(routers=["knm"]), **kw)  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError, match="pair model"):
        evaluate_dataset(records, options=options(pair=("big", "nope")), **kw)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="two different models"):
        evaluate_dataset(records, options=options(pair=("big", "big")), **kw)  # type: ignore[arg-type]


def test_prompts_missing_a_candidates_label_are_skipped_and_counted(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    del rows[0]["scores"]["mid"]
    path = tmp_path / "gap.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (res,) = evaluate_files(
        [path], prices=load_prices([PRICES]), prices_origin="fixture", options=options(routers=["random"])
    )
    assert res.n_prompts == 47 and res.n_incomplete == 1
    assert any("1 evaluation rows skipped" in n for n in res.notes)
    assert np.isfinite(res.routers["random"].aiq)


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    from pointsman.cli.app import main

    monkeypatch.setattr(sys, "argv", ["pointsman", *args])
    try:
        main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_errors_are_clear_and_leave_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(DATA.read_text().splitlines()[0] + "\n" + '{"id": "x", "source": "s", "prompt": 3}\n')
    out = tmp_path / "out"
    code = run_cli(["eval", "--data", str(bad), "--prices", str(PRICES), "--out", str(out)], monkeypatch)
    err = capsys.readouterr().err
    assert code == 2
    assert f"{bad}, line 2, field 'prompt'" in " ".join(err.split())
    assert not out.exists()
    code = run_cli(["eval", "--data", str(DATA), "--prices", str(PRICES), "--pair", "big"], monkeypatch)
    assert code == 2 and "--pair takes STRONG,WEAK" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    code = run_cli(["eval", "--data", str(empty), "--prices", str(PRICES)], monkeypatch)
    assert code == 2 and "holds no .jsonl" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_end_to_end_with_minilm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POINTSMAN_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "report"
    args = ["eval", "--data", str(DATA), "--prices", str(PRICES), "--out", str(out)]
    args += ["--router", "random,knn", "--bootstrap", "20", "--folds", "3"]
    assert run_cli(args, monkeypatch) == 0
    report = json.loads((out / "report.json").read_text())
    (d,) = report["datasets"]
    assert set(d["routers"]) == {"random", "knn"}
    assert d["split"]["folds"] == 3
    assert (tmp_path / "data" / "cache" / "embeddings.sqlite3").exists()
    assert (out / "eval_routing-quality-cost.png").stat().st_size > 10_000


def test_pretrained_scorers_are_built_with_their_defaults() -> None:
    from collections.abc import Sequence

    from pointsman.errors import ScorerError
    from pointsman.evaluation.harness import train_scorer
    from pointsman.scorer.base import SCORERS, Prediction, Scorer

    class Shipped(Scorer):
        name = "test-shipped"

        @property
        def models(self) -> list[str]:
            return ["big", "mid", "small"]

        def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
            return Prediction(models=list(models), quality=np.full((len(prompts), len(models)), 0.5))

    class NeedsArgs(Shipped):
        name = "test-needs-args"

        def __init__(self, path: str) -> None:
            self.path = path

    SCORERS.update({Shipped.name: Shipped, NeedsArgs.name: NeedsArgs})
    try:
        records = load_routing(DATA)
        assert isinstance(train_scorer("test-shipped", records, seed=0, target_source=None), Shipped)
        with pytest.raises(ScorerError, match="can neither be trained nor built without arguments"):
            train_scorer("test-needs-args", records, seed=0, target_source=None)
        (res,) = evaluate_files(
            [DATA], prices=load_prices([PRICES]), prices_origin="f", options=options(routers=["test-shipped"])
        )
        assert res.routers["test-shipped"].apgr == pytest.approx(0.5)  # constant margins: one tie group
    finally:
        SCORERS.pop(Shipped.name)
        SCORERS.pop(NeedsArgs.name)


def test_the_foundations_prior_scorer_runs_through_the_same_harness() -> None:
    (res,) = evaluate_files(
        [DATA],
        prices=load_prices([PRICES]),
        prices_origin="f",
        options=options(routers=["prior", "best-single"]),
    )
    assert set(res.routers) == {"prior", "best-single"}
    # Both predict each model's mean training label, so they route identically.
    assert res.routers["prior"].aiq == pytest.approx(res.routers["best-single"].aiq)


def test_candidates_never_labelled_on_the_same_prompt_are_an_error(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    rows[0]["scores"] = {"odd": 0.5, "mid": 0.2}  # "odd" is labelled only where "big" is not
    path = tmp_path / "disjoint.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    prices = {**load_prices([PRICES]), "odd": load_prices([PRICES])["mid"]}
    with pytest.raises(DataError, match="no prompt has labels for every candidate") as info:
        evaluate_files([path], prices=prices, prices_origin="f", options=options(candidates=["big", "odd"]))
    assert str(path) in info.value.message
