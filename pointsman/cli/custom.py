"""``pointsman custom ...``: custom routers from your own prompts — collect, judge, import, train, deploy, list,
delete, calibrate, status. Each command parses its options and calls ``pointsman.custom``."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from pointsman.catalog import Catalog
    from pointsman.custom.store import CustomStore

__all__ = ["register"]

custom_app = typer.Typer(
    name="custom",
    help="Custom routers trained on your own prompts: collect -> judge -> train -> deploy.",
    no_args_is_help=True,
)

NameOption = Annotated[str, typer.Option("--name", "-n", help="The custom router's name (router@NAME|...).")]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", help="A TOML config file (catalogue overrides). Default: $POINTSMAN_CONFIG_FILE."
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def _console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _data_dir() -> Path:
    from pointsman.settings import Settings

    return Settings().data_dir


def _catalog(config_file: Path | None) -> Catalog:
    from pointsman.catalog import load_catalog
    from pointsman.settings import Settings

    return load_catalog(config_file if config_file is not None else Settings().resolved_config_file())


def _progress(console: Console, what: str | None) -> Progress:
    """A progress bar; with ``what``, tasks carry an ``info`` field (spend, failures) shown beside the bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if what is None:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        return Progress(*columns, console=console)
    return Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _usd(value: Decimal) -> str:
    return f"${value:.6f}" if value < 1 else f"${value:.2f}"


def _summary(store: CustomStore, title: str, extra: dict[str, str]) -> None:
    """The final summary every long command prints (stdout): prompts, answers, cost spent, grades, missing."""
    counts = store.counts()
    lines = [
        f"{title} — custom router {store.name!r}",
        f"  prompts:        {counts['prompts']}",
        f"  answers:        {counts['answers']}",
        f"  cost spent:     {_usd(store.spent_usd())} in total",
        f"  grades:         {counts['grades']}",
        f"  missing grades: {counts['missing']} (unparseable verdicts; never counted as zero)",
    ]
    if counts["failed_answers"] or counts["failed_grades"]:
        lines.append(
            f"  failed:         {counts['failed_answers']} answers, {counts['failed_grades']} grades "
            "(retried on the next run)"
        )
    lines += [f"  {k + ':':<15} {v}" for k, v in extra.items()]
    typer.echo("\n".join(lines))


def _confirm(console: Console, message: str, yes: bool) -> None:
    console.print(message)
    if not yes and not typer.confirm("Continue?", default=False, err=True):
        raise typer.Abort()


@custom_app.command("collect")
def collect_command(
    name: NameOption,
    models: Annotated[str, typer.Option("--models", "-m", help="Candidate endpoints: m1@p1,m2@p2,...")],
    prompts: Annotated[
        Path | None,
        typer.Option("--prompts", "-p", help="Prompts file (.jsonl, .csv or .txt); optional on reruns."),
    ] = None,
    yes: YesOption = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Requests in flight at once.")] = 8,
    max_tokens: Annotated[int, typer.Option(min=1, help="Answer length limit per request.")] = 1024,
    temperature: Annotated[
        float | None, typer.Option(help="Sampling temperature (default: the provider's).")
    ] = None,
    retries: Annotated[int, typer.Option(min=0, help="Retries per request on 429/5xx/timeouts.")] = 3,
    config_file: ConfigOption = None,
) -> None:
    """Send every prompt to every candidate and store each answer as it arrives (resumable)."""
    from pointsman.custom.calls import resolve_endpoints, run_interruptibly
    from pointsman.custom.collect import collect_answers, plan_collection, read_prompts
    from pointsman.custom.store import CustomStore
    from pointsman.errors import DataError

    console = _console()
    catalog = _catalog(config_file)
    endpoints = resolve_endpoints(catalog, models.split(","))
    rows = read_prompts(prompts) if prompts is not None else None
    with CustomStore.open(_data_dir(), name, create=True) as store, store.exclusive("custom collect"):
        if rows is not None:
            added = store.add_prompts(rows)
            console.print(f"{len(rows)} prompts in {prompts} ({added} new)")
        elif not store.prompts():
            raise DataError(
                f"custom router {name!r} has no prompts yet; pass --prompts FILE", field="prompts"
            )
        store.add_endpoints({m: e.name for m, e in endpoints.items()})
        plan = plan_collection(store, endpoints, max_tokens=max_tokens)
        if plan.lost:
            console.print(
                f"[yellow]{len(plan.lost)} request(s) were in flight when the last run stopped; their answers were "
                "lost and they are sent again[/]"
            )
        if not plan.pairs:
            _summary(store, "nothing to collect", {"already answered": str(plan.done)})
            return
        _confirm(
            console,
            f"{len(plan.pairs)} requests to {len(endpoints)} endpoint(s) ({plan.done} already answered): estimated "
            f"{_usd(plan.expected_usd)} at ~{plan.expected_output_tokens} answer tokens, at most "
            f"{_usd(plan.max_usd)} if every answer uses --max-tokens {max_tokens} (list prices).",
            yes,
        )
        with _progress(console, "collect") as progress:
            task = progress.add_task("collect", total=len(plan.pairs), info="")
            spent = [Decimal(0)]
            failed = [0]

            def on_result(ok: bool, cost: Decimal) -> None:
                spent[0] += cost
                failed[0] += 0 if ok else 1
                progress.update(task, advance=1, info=f"{_usd(spent[0])} spent, {failed[0]} failed")

            outcome = run_interruptibly(
                lambda stop: collect_answers(
                    store,
                    plan,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    concurrency=concurrency,
                    retries=retries,
                    stop=stop,
                    on_result=on_result,
                ),
                on_stop=lambda: console.print(
                    "[yellow]stopping: waiting for the requests in flight (Ctrl-C again to abandon them)[/]"
                ),
            )
        for error in outcome.errors:
            console.print(f"[red]failed:[/] {error}")
        _summary(
            store,
            "collect stopped early (rerun to continue)" if outcome.stopped else "collect finished",
            {
                "this run": f"{outcome.answered} answers, {outcome.failed} failed, {_usd(outcome.spent_usd)}",
            },
        )


@custom_app.command("judge")
def judge_command(
    name: NameOption,
    judge: Annotated[str, typer.Option("--judge", "-j", help="The judge endpoint, MODEL@PROVIDER.")],
    reference: Annotated[
        Path | None,
        typer.Option(help="Reference answers: .jsonl/.csv with 'id' (or 'prompt') and 'reference'."),
    ] = None,
    rubric: Annotated[
        Path | None,
        typer.Option(help="Your own rubric: a text template with {question}, {answer}, {reference}."),
    ] = None,
    yes: YesOption = False,
    concurrency: Annotated[int, typer.Option(min=1, help="Judge requests in flight at once.")] = 4,
    max_tokens: Annotated[int, typer.Option(min=16, help="Length limit of each verdict.")] = 512,
    retries: Annotated[int, typer.Option(min=0, help="Retries per request on 429/5xx/timeouts.")] = 3,
    config_file: ConfigOption = None,
) -> None:
    """Grade every stored answer 1..10 with an LLM judge (resumable; unparseable twice = missing, never 0)."""
    from pointsman.custom.calls import resolve_endpoints, run_interruptibly
    from pointsman.custom.judge import (
        judge_answers,
        load_rubric,
        plan_judging,
        read_references,
        render_rubric,
    )
    from pointsman.custom.store import CustomStore
    from pointsman.tokens import count_message_tokens

    console = _console()
    catalog = _catalog(config_file)
    judge_endpoint = next(iter(resolve_endpoints(catalog, [judge]).values()))
    template = load_rubric(rubric)
    with CustomStore.open(_data_dir(), name) as store, store.exclusive("custom judge"):
        if reference is not None:
            console.print(f"{read_references(reference, store)} reference answers attached")
        plan = plan_judging(store, judge_endpoint.name)
        if plan.lost:
            console.print(
                f"[yellow]{len(plan.lost)} verdict(s) were in flight when the last run stopped; asked again[/]"
            )
        if not plan.pairs:
            _summary(store, "nothing to judge", {"already graded": str(plan.done)})
            return
        prompts = {p.id: p for p in store.prompts()}
        estimate = sum(
            (
                judge_endpoint.cost_usd(
                    count_message_tokens(
                        [
                            {
                                "role": "user",
                                "content": render_rubric(
                                    template,
                                    prompts[a.prompt_id].text,
                                    a.text or "",
                                    prompts[a.prompt_id].reference,
                                ),
                            }
                        ]
                    ),
                    200,
                )
                for a in plan.pairs
            ),
            Decimal(0),
        )
        _confirm(
            console,
            f"{len(plan.pairs)} answers to grade with {judge_endpoint.name} ({plan.done} already graded): estimated "
            f"{_usd(estimate)} at ~200 verdict tokens (list prices).",
            yes,
        )
        with _progress(console, "judge") as progress:
            task = progress.add_task("judge", total=len(plan.pairs), info="")
            tally = {"ok": 0, "missing": 0, "failed": 0}
            spent = [Decimal(0)]

            def on_result(status: str, cost: Decimal) -> None:
                tally[status] += 1
                spent[0] += cost
                progress.update(
                    task,
                    advance=1,
                    info=f"{_usd(spent[0])} spent, {tally['missing']} missing, {tally['failed']} failed",
                )

            outcome = run_interruptibly(
                lambda stop: judge_answers(
                    store,
                    plan,
                    judge_endpoint,
                    rubric=template,
                    max_tokens=max_tokens,
                    concurrency=concurrency,
                    retries=retries,
                    stop=stop,
                    on_result=on_result,
                ),
                on_stop=lambda: console.print(
                    "[yellow]stopping: waiting for the verdicts in flight (Ctrl-C again to abandon them)[/]"
                ),
            )
        for error in outcome.errors:
            console.print(f"[red]failed:[/] {error}")
        _summary(
            store,
            "judge stopped early (rerun to continue)" if outcome.stopped else "judge finished",
            {
                "this run": f"{outcome.graded} graded, {outcome.missing} missing, {outcome.failed} failed, "
                f"{outcome.retried_unparseable} verdicts asked twice, {_usd(outcome.spent_usd)}",
            },
        )


@custom_app.command("import")
def import_command(
    name: NameOption,
    file: Annotated[
        Path, typer.Argument(help="Routing-data .jsonl(.gz), or a .csv with one score column per model.")
    ],
    scale: Annotated[float, typer.Option(help="Divide CSV scores by this (10 for 1..10 grades).")] = 1.0,
) -> None:
    """Bring already-labelled prompts instead of collecting and judging."""
    from pointsman.custom.importer import import_file
    from pointsman.custom.store import CustomStore

    with CustomStore.open(_data_dir(), name, create=True) as store, store.exclusive("custom import"):
        outcome = import_file(store, file, scale=scale)
        _summary(
            store,
            "import finished",
            {
                "imported": f"{outcome.prompts} prompts ({outcome.new_prompts} new), {outcome.scores} scores for "
                f"{', '.join(outcome.models)}"
            },
        )


@custom_app.command("train")
def train_command(
    name: NameOption,
    base: Annotated[
        Path | None, typer.Option(help="Checkpoint to fine-tune from (default: the shipped scorer).")
    ] = None,
    judge: Annotated[
        str | None, typer.Option(help="Whose grades to learn from, when there are several.")
    ] = None,
    steps: Annotated[int, typer.Option(min=0, help="Fine-tuning steps (full batch).")] = 300,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.02,
    test_fraction: Annotated[float, typer.Option(min=0.01, max=0.9, help="Share of prompts held out.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the hold-out split and training.")] = 0,
    prices: Annotated[
        Path | None, typer.Option(help="JSON {model: [input, output]} for models not in the catalogue.")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option(min=0, help="Bootstrap resamples for the confidence intervals.")
    ] = 200,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write PNG plots.")] = True,
    threads: Annotated[int, typer.Option(min=1, help="torch CPU threads.")] = 2,
    config_file: ConfigOption = None,
) -> None:
    """Fine-tune the shipped scorer on your grades, hold out a split and report against the off-the-shelf
    router and each single model."""
    import torch

    from pointsman.custom.store import CustomStore
    from pointsman.custom.train import TrainOptions, train_custom
    from pointsman.evaluation.costs import load_prices

    torch.set_num_threads(threads)
    console = _console()
    catalog = _catalog(config_file)
    options = TrainOptions(
        steps=steps, lr=lr, test_fraction=test_fraction, seed=seed, bootstrap=bootstrap, plots=plots
    )
    with (
        CustomStore.open(_data_dir(), name) as store,
        store.exclusive("custom train"),
        _progress(console, None) as progress,
    ):
        summary = train_custom(
            store,
            catalog,
            base=base,
            judge=judge,
            options=options,
            prices=load_prices([prices]) if prices else None,
            progress=progress,
        )
    rows = {k: f"AIQ {v:.4f}" for k, v in sorted(summary.aiq.items(), key=lambda kv: -kv[1])}
    lines = [
        f"trained custom router {name!r} on {summary.train_prompts} prompts; held out {summary.test_prompts}",
        f"  models: {', '.join(summary.models)}"
        + (f" (new to the base: {', '.join(summary.new_models)})" if summary.new_models else ""),
        f"  judge: {summary.judge}; best single model on the held-out split: {summary.best_single}",
        *(f"  {k:<16} {v}" for k, v in rows.items()),
        f"  checkpoint: {summary.model_dir}",
        f"  report:     {summary.report_dir / 'report.md'}",
        f"next: pointsman custom deploy {name}",
    ]
    typer.echo("\n".join(lines))
    with CustomStore.open(_data_dir(), name) as store:
        _summary(store, "train finished", {"held out": f"{summary.test_prompts} prompts (never trained on)"})


@custom_app.command("deploy")
def deploy_command(name: Annotated[str, typer.Argument(help="The custom router to deploy.")]) -> None:
    """Make router@NAME|... usable in the gateway and in 'pointsman route'."""
    from pointsman.custom.registry import deploy

    record = deploy(name, data_dir=_data_dir())
    typer.echo(
        f"deployed {name!r}: routes between {', '.join(record['models'])}\n"
        f"use it as: router@{name}|q:1|c:0.01  (tune c with 'pointsman custom calibrate --name {name} ...')"
    )


@custom_app.command("undeploy")
def undeploy_command(
    name: Annotated[str, typer.Argument(help="The custom router to take out of service.")],
) -> None:
    """Stop serving router@NAME (its data and checkpoint are kept)."""
    from pointsman.custom.registry import undeploy

    typer.echo(
        f"undeployed {name!r}" if undeploy(name, data_dir=_data_dir()) else f"{name!r} was not deployed"
    )


@custom_app.command("list")
def list_command(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every custom router with its counts, spend and state."""
    import dataclasses
    import json

    from pointsman.custom.registry import list_routers

    routers = list_routers(data_dir=_data_dir())
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(r) for r in routers], indent=2))
        return
    if not routers:
        typer.echo("no custom routers yet; start with 'pointsman custom collect --name NAME ...'")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="custom routers")
    for column in (
        "name",
        "prompts",
        "answers",
        "grades",
        "missing",
        "spent",
        "models",
        "trained",
        "deployed",
    ):
        table.add_column(column)
    for r in routers:
        table.add_row(
            r.name, str(r.prompts), str(r.answers), str(r.grades), str(r.missing), f"${r.spent_usd}",
            ", ".join(r.models), "yes" if r.trained else "no", "yes" if r.deployed else "no",
        )  # fmt: skip
    Console().print(table)


@custom_app.command("delete")
def delete_command(
    name: Annotated[str, typer.Argument(help="The custom router to delete.")], yes: YesOption = False
) -> None:
    """Delete a custom router: its answers (paid for!), grades, checkpoint and deployment."""
    from pointsman.custom.registry import delete_router
    from pointsman.custom.store import CustomStore

    with CustomStore.open(_data_dir(), name) as store:
        counts, spent = store.counts(), store.spent_usd()
    _confirm(
        _console(),
        f"delete {name!r}: {counts['answers']} answers ({_usd(spent)} spent) and {counts['grades']} grades are lost for good",
        yes,
    )
    typer.echo(f"deleted {delete_router(name, data_dir=_data_dir())}")


@custom_app.command("calibrate")
def calibrate_command(
    prompts: Annotated[
        Path, typer.Option("--prompts", "-p", help="A sample of your prompts (.jsonl, .csv, .txt).")
    ],
    max_strong_share: Annotated[
        float,
        typer.Option(
            "--max-strong-share",
            min=0.0,
            max=1.0,
            help="At most this share of calls (0..1) to the strongest model.",
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option("--name", "-n", help="A deployed custom router (default: the shipped router)."),
    ] = None,
    router: Annotated[
        str | None,
        typer.Option("--router", "-r", help="The router string to tune (default: router@NAME|q:1)."),
    ] = None,
    strong: Annotated[
        str | None, typer.Option(help="The model to limit (default: the best on average on the sample).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    config_file: ConfigOption = None,
) -> None:
    """Without labels: find the cost weight c so that at most the given share of your prompts go to the
    strongest model."""
    import json

    from pointsman.custom.calibrate import calibrate_cost_weight
    from pointsman.custom.collect import read_prompts
    from pointsman.router import Router

    texts = [p.text for p in read_prompts(prompts)]
    spec = router or (f"router@{name}|q:1" if name else "router@q:1")
    engine = Router(catalog=_catalog(config_file))
    iterations = 40
    with _progress(_console(), "calibrate") as progress:
        task = progress.add_task("calibrate", total=iterations + 3, info=f"{len(texts)} prompts, bisecting c")
        result = calibrate_cost_weight(
            texts,
            spec,
            max_strong_share=max_strong_share,
            engine=engine,
            strong=strong,
            iterations=iterations,
            on_step=lambda: progress.advance(task),
        )
        progress.update(task, completed=iterations + 3)
    if as_json:
        import dataclasses

        typer.echo(json.dumps(dataclasses.asdict(result), indent=2))
        return
    shares = ", ".join(f"{m} {s:.0%}" for m, s in sorted(result.shares.items(), key=lambda kv: -kv[1]))
    typer.echo(
        f"{result.router}\n"
        f"  cost weight c = {result.cost_weight:g}: {result.strong_share:.1%} of {result.prompts} prompts go to "
        f"{result.strong_model} (asked: at most {result.target_share:.0%})\n  shares: {shares}"
    )


@custom_app.command("status")
def status_command(name: NameOption) -> None:
    """Counts, spend and what is left to do for one custom router."""
    from pointsman.custom.store import CustomStore

    with CustomStore.open(_data_dir(), name) as store:
        endpoints = store.endpoints()
        _summary(
            store,
            "status",
            {"models": ", ".join(f"{m} ({e or 'imported'})" for m, e in sorted(endpoints.items()))},
        )


def register(app: typer.Typer) -> None:
    app.add_typer(custom_app, name="custom")
