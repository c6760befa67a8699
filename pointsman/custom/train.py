"""``custom train``: fine-tune the shipped scorer on the user's graded prompts, hold out a split, and report.

1. **Records.** Each stored prompt becomes a routing record of source ``custom/NAME`` whose scores are one
   judge's grades / 10 (missing grades are left out, never zero), with the real answer lengths and costs.
2. **Hold-out.** The imported ``test`` split when there is one, else a seeded ``test_fraction`` of the prompts
   chosen by a hash of their text (stable across reruns and additions).
3. **Fine-tune** from the base checkpoint (the packaged default, or ``base``) on the training split only: the
   new source gets its own head, started from the default head; LLMs the base never saw get latents fitted
   from the user's labels; known ones are adapted, held near their trained latents by an L2 anchor
   (``pointsman.scorer.adapt``). The result is written to ``<router dir>/model``.
4. **Report** with the evaluation harness on the held-out split: the custom router against the off-the-shelf
   router (the base checkpoint as shipped), the best single model on the training split, every single model,
   the oracle — AIQ, APGR, CPT, curves and plots, in ``<router dir>/report``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pointsman.catalog import Catalog
from pointsman.custom.store import CustomStore
from pointsman.data import RoutingRecord
from pointsman.errors import DataError, ScorerError

__all__ = [
    "TrainOptions",
    "TrainSummary",
    "build_records",
    "choose_judge",
    "hold_out",
    "model_prices",
    "resolve_base",
    "train_custom",
]

MODEL_DIR = "model"
REPORT_DIR = "report"


@dataclass
class TrainOptions:
    steps: int = 300
    lr: float = 0.02
    train_latents: str = "all"  # "new": only LLMs the base never saw; "all": also adapt known ones (anchored)
    anchor: float = 1.0
    test_fraction: float = 0.2
    seed: int = 0
    bootstrap: int = 200
    plots: bool = True


@dataclass
class TrainSummary:
    model_dir: Path
    report_dir: Path
    models: list[str]
    new_models: list[str]
    train_prompts: int
    test_prompts: int
    judge: str
    aiq: dict[str, float] = field(default_factory=dict)  # router or reference → AIQ on the held-out split
    quality_at_best_single_cost: dict[str, float | None] = field(default_factory=dict)
    best_single: str = ""
    notes: list[str] = field(default_factory=list)


def resolve_base(base: str | os.PathLike[str] | None) -> Path:
    """The checkpoint to fine-tune from: ``base``, else the packaged default, else the packaged base."""
    from pointsman.scorer.neural import packaged_checkpoint

    if base is not None:
        path = Path(base)
        if not (path / "config.json").exists():
            raise ScorerError(
                f"{path} is not a scorer checkpoint (no config.json); give a directory written by 'pointsman train'"
            )
        return path
    for name in ("default", "base"):
        path = packaged_checkpoint(name)
        if (path / "config.json").exists():
            return path
    raise ScorerError(
        "this installation ships no neural scorer checkpoint to fine-tune from; train one with "
        "'pointsman train --out DIR' and pass --base DIR/best"
    )


def choose_judge(store: CustomStore, judge: str | None) -> str:
    judges = store.judges()
    if not judges:
        raise DataError(
            f"custom router {store.name!r} has no grades yet; run 'pointsman custom judge --name {store.name} "
            "--judge MODEL@PROVIDER' or 'pointsman custom import'"
        )
    if judge is not None:
        if judge not in judges:
            from pointsman.errors import UnknownNameError

            raise UnknownNameError("judge", judge, judges, param="judge")
        return judge
    if len(judges) > 1:
        raise DataError(
            f"custom router {store.name!r} has grades from several judges ({', '.join(judges)}); their scales "
            "differ, so pick one with --judge"
        )
    return judges[0]


def build_records(store: CustomStore, judge: str) -> list[RoutingRecord]:
    """One record per prompt with at least one grade from ``judge`` (missing grades are left out)."""
    scores: dict[str, dict[str, float]] = {}
    for g in store.grades(judge):
        if g.status == "ok" and g.score is not None:
            scores.setdefault(g.prompt_id, {})[g.model] = g.score
    facts = store.answer_facts()
    source = f"custom/{store.name}"
    label = f"{judge} grade 1..10 / 10" if judge != "import" else "imported score 0..1"
    out = []
    for p in store.prompts():
        s = scores.get(p.id)
        if not s:
            continue
        chars: dict[str, int] = {}
        cost: dict[str, float] = {}
        for m in s:
            n_chars, usd = facts.get((p.id, m), (None, None))
            if n_chars is not None:
                chars[m] = n_chars
            if usd is not None:
                cost[m] = usd
        out.append(RoutingRecord(p.id, source, "", p.split or "", p.text, label, s, chars, cost))
    return out


def hold_out(records: Sequence[RoutingRecord], test_fraction: float, seed: int) -> list[RoutingRecord]:
    """Records with ``split`` set: an imported test split is kept; otherwise the ``test_fraction`` of prompts
    with the lowest text hash (at least one prompt on each side)."""
    from dataclasses import replace

    from pointsman.scorer.dataset import stable_fraction

    if any(r.split == "test" for r in records):
        return [replace(r, split=r.split or "train") for r in records]
    if len(records) < 2:
        raise DataError(
            f"{len(records)} graded prompt(s); a custom router needs at least 2 (better: hundreds)"
        )
    order = sorted(range(len(records)), key=lambda i: stable_fraction(records[i].prompt, seed))
    n_test = min(len(records) - 1, max(1, round(len(records) * test_fraction)))
    test = set(order[:n_test])
    return [replace(r, split="test" if i in test else "train") for i, r in enumerate(records)]


def model_prices(
    store: CustomStore, catalog: Catalog, models: Sequence[str], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """USD per 1M tokens per model: ``extra`` (a --prices file), else the collected endpoint's price, else the
    catalogue's cheapest endpoint of the model."""
    from pointsman.evaluation.costs import Price

    endpoints = store.endpoints()
    cheapest: dict[str, Price] | None = None
    out: dict[str, Price] = {}
    missing = []
    for m in models:
        if extra and m in extra:
            out[m] = extra[m]
            continue
        name = endpoints.get(m)
        if name and name in catalog.endpoint_table:
            e = catalog.endpoint_table[name]
            out[m] = Price(float(e.input_usd_per_mtok), float(e.output_usd_per_mtok))
            continue
        if cheapest is None:
            cheapest = _cheapest(catalog)
        if m in cheapest:
            out[m] = cheapest[m]
        else:
            missing.append(m)
    if missing:
        raise DataError(
            f"no price for {', '.join(missing)} (not in the catalogue); pass --prices FILE with "
            '{"model": [input, output]} USD per 1M tokens',
            field="prices",
        )
    return out


def _cheapest(catalog: Catalog) -> dict[str, Any]:
    from pointsman.evaluation.costs import Price

    out: dict[str, Price] = {}
    for e in catalog.endpoints():
        price = Price(float(e.input_usd_per_mtok), float(e.output_usd_per_mtok))
        best = out.get(e.model)
        if best is None or price.input_per_m + price.output_per_m < best.input_per_m + best.output_per_m:
            out[e.model] = price
    return out


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing it (the old one is removed only once the new one is in place)."""
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def train_custom(
    store: CustomStore,
    catalog: Catalog,
    *,
    base: str | os.PathLike[str] | None = None,
    judge: str | None = None,
    options: TrainOptions | None = None,
    prices: dict[str, Any] | None = None,
    encoder: Any | None = None,
    progress: Any | None = None,
) -> TrainSummary:
    """Fine-tune, save and evaluate (see the module docstring). ``progress``: a ``rich.progress.Progress``."""
    import torch

    from pointsman.custom.evaluate import CUSTOM_ROUTER, OFF_THE_SHELF
    from pointsman.evaluation.harness import EvalOptions, evaluate_dataset
    from pointsman.evaluation.report import write_report
    from pointsman.scorer.checkpoint import load_model, save_model
    from pointsman.scorer.neural import NeuralScorer

    opts = options or TrainOptions()
    judge_name = choose_judge(store, judge)
    base_dir = resolve_base(base)
    records = hold_out(build_records(store, judge_name), opts.test_fraction, opts.seed)
    models = sorted({m for r in records for m in r.scores})
    if len(models) < 2:
        raise DataError(
            f"grades for {len(models)} model(s) only; a router chooses between at least two — collect answers "
            "from more models ('custom collect --models ...')"
        )
    train_rows = [r for r in records if r.split == "train"]
    test_rows = [r for r in records if r.split == "test"]
    if not train_rows or not test_rows:
        raise DataError("the hold-out left no training or no test prompts; give more prompts")
    price_table = model_prices(store, catalog, models, prices)

    task = progress.add_task("fine-tuning the scorer", total=None) if progress is not None else None
    base_model, _ = load_model(base_dir)
    new_models = [m for m in models if m not in base_model.config.models]
    scorer = NeuralScorer.fit(
        train_rows,
        seed=opts.seed,
        target_source=records[0].source,
        base=base_dir,
        encoder=encoder,
        steps=opts.steps,
        lr=opts.lr,
        train_latents=opts.train_latents,
        anchor=opts.anchor,
        # The whole read-out: a custom router exists to learn what is prompt-specific in the user's data (one
        # model failing SQL prompts). Offsets-only, the default chosen for ~117 arena prompts per fold, cannot.
        head="row",
    )
    encoder = scorer.encoder
    staging = store.directory / (MODEL_DIR + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    save_model(
        scorer.model,
        staging,
        meta={
            "custom_router": store.name,
            "models": models,
            "new_models": new_models,
            "judge": judge_name,
            "base": str(base_dir),
            "source": records[0].source,
            "train_prompts": len(train_rows),
            "test_prompts": len(test_rows),
            "steps": opts.steps,
            "torch": torch.__version__,
        },
    )
    model_dir = store.directory / MODEL_DIR
    _replace_dir(staging, model_dir)
    if progress is not None and task is not None:
        progress.update(task, total=1, completed=1)

    eval_options = EvalOptions(
        routers=[CUSTOM_ROUTER, OFF_THE_SHELF, "best-single"],
        candidates=models,
        seed=opts.seed,
        max_prompts=None,
        bootstrap=opts.bootstrap,
        router_options={
            CUSTOM_ROUTER: {"checkpoint": str(model_dir), "encoder": encoder},
            OFF_THE_SHELF: {"checkpoint": str(base_dir), "encoder": encoder},
        },
    )
    result = evaluate_dataset(
        records,
        name=store.name,
        path=str(store.path),
        prices=price_table,
        prices_origin="the collected endpoints' catalogue prices",
        options=eval_options,
        progress=progress,
    )
    report_dir = store.directory / REPORT_DIR
    staging_report = store.directory / (REPORT_DIR + ".new")
    shutil.rmtree(staging_report, ignore_errors=True)
    meta = {
        "command": f"pointsman custom train --name {store.name}",
        "prices": "the collected endpoints' catalogue prices (realised cost from stored usage)",
        "bootstrap": opts.bootstrap,
        "custom_router": store.name,
        "judge": judge_name,
        "base_checkpoint": str(base_dir),
    }
    write_report([result], staging_report, meta, plots=opts.plots)
    _replace_dir(staging_report, report_dir)
    summary = TrainSummary(
        model_dir=model_dir,
        report_dir=report_dir,
        models=models,
        new_models=new_models,
        train_prompts=len(train_rows),
        test_prompts=len(test_rows),
        judge=judge_name,
        best_single=result.best_single,
        notes=list(result.notes),
    )
    for name, r in {**result.routers, **result.references}.items():
        summary.aiq[name] = r.aiq
        summary.quality_at_best_single_cost[name] = r.quality_at_best_single_cost
    store.set_meta("trained_judge", judge_name)
    return summary
