"""``pointsman eval``: compare routers on routing data — curves, AIQ, APGR, CPT, plots."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def _names(values: list[str] | None) -> list[str] | None:
    """Repeatable, comma-separated option values → a flat list (None when not given)."""
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def _data_files(paths: list[Path]) -> list[Path]:
    """Files as given; a directory stands for every ``*.jsonl`` / ``*.jsonl.gz`` in it."""
    from pointsman.errors import DataError

    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted([*p.glob("*.jsonl"), *p.glob("*.jsonl.gz")])
            if not found:
                raise DataError("the directory holds no .jsonl or .jsonl.gz files", path=str(p))
            out.extend(found)
        else:
            out.append(p)
    return out


def eval_command(
    data: Annotated[
        list[Path],
        typer.Option(
            "--data", help="Routing-data file (.jsonl/.jsonl.gz) or a directory of them; repeatable."
        ),
    ],
    router: Annotated[
        list[str] | None,
        typer.Option(
            "--router",
            help="Registered scorer(s) to evaluate, comma-separated or repeated. "
            "Default: random,best-single,knn,mf.",
        ),
    ] = None,
    candidates: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated models to route between. Default: every priced model labelled on "
            ">= 90% of a file's prompts."
        ),
    ] = None,
    prices: Annotated[
        list[Path] | None,
        typer.Option(
            "--prices",
            help="JSON object mapping each model to its (input, output) USD per 1M tokens; repeatable, later wins. "
            "Default: the catalogue's cheapest endpoint per model.",
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="New directory for report.json, report.md and PNG plots.")
    ] = None,
    pair: Annotated[
        str | None,
        typer.Option(
            help="STRONG,WEAK for APGR/CPT. Default: gpt-4-1106-preview,mixtral-8x7b-instruct-v0.1 "
            "when both are candidates, else the best and the cheapest candidate."
        ),
    ] = None,
    train_extra: Annotated[
        list[Path] | None,
        typer.Option(
            "--train-extra",
            help="More routing data every fold may also train on (never a test "
            "prompt); repeatable. Rows of the evaluated file's own source are ignored.",
        ),
    ] = None,
    folds: Annotated[
        int | None, typer.Option(help="k-fold cross-validation with k folds, even where a test split exists.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for splits, subsampling, bootstrap and training.")] = 0,
    max_prompts: Annotated[
        int,
        typer.Option(
            help="Subsample each file to this many distinct training prompts (seeded); a source's "
            "own test split is kept whole."
        ),
    ] = 3000,
    all_prompts: Annotated[
        bool, typer.Option("--all-prompts", help="Use every prompt (no subsampling).")
    ] = False,
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the confidence intervals.")] = 500,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
) -> None:
    """Train each router on honest splits of each file and compare it with every single model and the oracle."""
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pointsman.errors import DataError
    from pointsman.evaluation.costs import catalogue_prices, load_prices
    from pointsman.evaluation.harness import DEFAULT_ROUTERS, EvalOptions, evaluate_files
    from pointsman.evaluation.report import check_out_dir, render_markdown, write_report

    console = Console(stderr=True)
    torch.set_num_threads(max(1, threads))
    if out is not None:
        check_out_dir(out)
    pair_names = _names([pair] if pair else None)
    if pair_names is not None and len(pair_names) != 2:
        raise DataError(f"--pair takes STRONG,WEAK (two models), got {pair!r}", field="pair")
    options = EvalOptions(
        routers=_names(router) or list(DEFAULT_ROUTERS),
        candidates=_names([candidates] if candidates else None),
        pair=(pair_names[0], pair_names[1]) if pair_names else None,
        folds=folds,
        seed=seed,
        max_prompts=None if all_prompts else max_prompts,
        bootstrap=bootstrap,
    )
    if prices:
        price_table = load_prices(prices)
        origin = ", ".join(str(p) for p in prices)
    else:
        price_table = catalogue_prices()
        origin = "the catalogue (cheapest endpoint per model; pass --prices to use others)"
    files = _data_files(data)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        results = evaluate_files(
            files,
            prices=price_table,
            prices_origin=origin,
            options=options,
            train_extra_paths=_data_files(train_extra or []),
            progress=progress,
        )
    meta = {
        "command": "pointsman " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "prices": origin,
        "bootstrap": options.bootstrap,
        "options": options.model_dump(mode="json"),
    }
    if out is None:
        typer.echo(render_markdown(results, meta))
        return
    written = write_report(results, out, meta, plots=plots)
    console.print(f"wrote {len(written)} files to {out}: " + ", ".join(p.name for p in written))


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
