"""``pointsman route``: which endpoint would Pointsman pick for a prompt, and why. ``pointsman endpoints``: the
catalogue. Both only parse arguments and call ``pointsman.router`` / ``pointsman.catalog``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from pointsman.catalog import Catalog
    from pointsman.config import Config
    from pointsman.router import Ranking

__all__ = ["register"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A TOML config file (catalogue overrides). Default: $POINTSMAN_CONFIG_FILE, else "
        "~/.config/pointsman/config.toml when it exists.",
    ),
]


def _load(config_file: Path | None) -> tuple[Config, Catalog]:
    from pointsman.catalog import load_catalog
    from pointsman.config import load_config
    from pointsman.settings import Settings

    config = load_config(config_file if config_file is not None else Settings().resolved_config_file())
    return config, load_catalog(config=config)


def route_command(
    prompt: Annotated[str, typer.Argument(help="The prompt to route ('-' reads it from stdin).")],
    router: Annotated[
        str | None,
        typer.Option(
            "--router", "-r", help="A router string, e.g. 'router@q:1|c:4.65e-03|t:2.07e-05|i:3.11e-02'."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    config_file: ConfigOption = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="The answer's token limit (filters and cost).")
    ] = None,
    top: Annotated[int, typer.Option("--top", help="Rows to show in the table (0: all).")] = 15,
    scorer: Annotated[
        str | None,
        typer.Option(
            "--scorer",
            help="'neural' (the shipped scorer), 'prior' (each model's mean quality; no torch) or a checkpoint "
            "directory from 'pointsman train'. Default: the config's [routing] scorer, else 'neural'.",
        ),
    ] = None,
) -> None:
    """Rank the catalogue's endpoints for PROMPT and show the winner (offline: nothing is sent)."""
    from pointsman.router import Router
    from pointsman.router_string import DEFAULT_ROUTER
    from pointsman.scorer.default import scorer_by_name
    from pointsman.settings import Settings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar when MiniLM loads
    text = sys.stdin.read() if prompt == "-" else prompt
    config, catalog = _load(config_file)
    engine = Router(
        catalog=catalog,
        scorer=scorer_by_name(scorer or config.routing.scorer, torch_threads=Settings().scorer_torch_threads),
        default_router=config.routing.default_router or DEFAULT_ROUTER,
    )
    ranking = engine.rank(text, router, max_tokens=max_tokens)
    if as_json:
        typer.echo(json.dumps(ranking.to_dict(), indent=2))
    else:
        _print_table(ranking, top)


def _money(value: float) -> str:
    return "0" if value == 0 else f"{value:.2g}"


def _print_table(ranking: Ranking, top: int) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"{ranking.spec.to_string()}  ({ranking.prompt_tokens} prompt tokens, est.)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        padding=(0, 1),
    )
    table.add_column("endpoint", overflow="fold")
    table.add_column("quality", justify="right", no_wrap=True)
    table.add_column("$/1M", justify="right", no_wrap=True)
    table.add_column("est. $", justify="right", no_wrap=True)
    table.add_column("TTFT", justify="right", no_wrap=True)
    table.add_column("ITL", justify="right", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    in_plan = {r.endpoint for r in ranking.plan}
    shown = ranking.ranked if top <= 0 else ranking.ranked[:top]
    for r in shown:
        prior = "*" if "ttft: catalogue prior" in r.flags else ""
        unverified = "?" if "price: unverified" in r.flags else ""
        not_scored = "†" if _quality_not_from_scorer(r.flags) else ""
        style = (
            "bold green"
            if r.endpoint == ranking.chosen.endpoint
            else ("cyan" if r.endpoint in in_plan else None)
        )
        table.add_row(
            r.endpoint,
            f"{r.quality:.3f}{not_scored}",
            f"{r.cost:.3g}{unverified}",
            _money(r.request_cost_usd),
            f"{r.ttft_ms:.0f}{prior}",
            f"{r.itl_ms:.3g}{prior}",
            f"{r.score:.3f}",
            style=style,
        )
    console.print(table)
    if len(shown) < len(ranking.ranked):
        console.print(f"... and {len(ranking.ranked) - len(shown)} more (--top 0 shows all)", style="dim")
    chosen = ranking.chosen
    terms = ", ".join(f"{t.metric} {t.contribution:+.4f}" for t in chosen.terms)
    console.print(f"[bold]chosen:[/] [green]{chosen.endpoint}[/]  (score {chosen.score:.4f} = {terms})")
    if len(ranking.plan) > 1:
        console.print("fallbacks: " + " -> ".join(r.endpoint for r in ranking.plan[1:]))
    legend = [
        f"quality: scorer {ranking.scorer!r} (0..1)",
        "$/1M: USD per 1M tokens, 3:1 input:output blend; est. $: this prompt with the expected answer",
        "TTFT/ITL in ms",
    ]
    if any("ttft: catalogue prior" in r.flags for r in shown):
        legend.append("* catalogue latency prior, not measured")
    if any("price: unverified" in r.flags for r in shown):
        legend.append("? price not verified (see 'pointsman endpoints --json')")
    if any(_quality_not_from_scorer(r.flags) for r in shown):
        legend.append("† quality not from the scorer (a prior, or unknown; --json flags say which)")
    console.print("; ".join(legend), style="dim")
    for note in ranking.notes:
        if "catalogue priors" not in note:
            console.print(f"note: {note}", style="dim")


def _quality_not_from_scorer(flags: tuple[str, ...]) -> bool:
    return any(f.startswith("quality:") for f in flags)


def endpoints_command(
    config_file: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    all_providers: Annotated[
        bool, typer.Option("--all", help="Include disabled providers' endpoints.")
    ] = False,
) -> None:
    """List the catalogue's endpoints with prices, context windows and where each price came from."""
    from rich.console import Console
    from rich.table import Table

    _, catalog = _load(config_file)
    rows = sorted(
        (
            e
            for e in catalog.endpoint_table.values()
            if all_providers or catalog.provider_table[e.provider].enabled
        ),
        key=lambda e: e.name,
    )
    if as_json:
        typer.echo(json.dumps([e.model_dump(mode="json") for e in rows], indent=2))
        return
    table = Table(title="Pointsman catalogue (USD per 1M tokens)")
    for column in ("endpoint", "in", "out", "context", "as of", "verified", "key"):
        table.add_column(column)
    for e in rows:
        enabled = catalog.provider_table[e.provider].enabled
        table.add_row(
            e.name + ("" if enabled else " (disabled)"),
            str(e.input_usd_per_mtok),
            str(e.output_usd_per_mtok),
            str(e.context_window),
            e.price_as_of.isoformat(),
            "yes" if e.price_verified else "no",
            e.api_key_env or "-",
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.command("route")(route_command)
    app.command("endpoints")(endpoints_command)
