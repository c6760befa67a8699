"""``pointsman bench run|schedule|show|plot``: measure endpoints' TTFT, ITL, throughput and cost, and look at
what was measured. Defaults come from the config's ``[stats]`` table; options override them."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from pointsman.catalog import Catalog
    from pointsman.settings import Settings
    from pointsman.stats.settings import StatsSettings
    from pointsman.stats.store import Sample

__all__ = ["register"]

bench_app = typer.Typer(
    help="Benchmark endpoints (TTFT, ITL, tokens/s, cost) and show the results.", no_args_is_help=True
)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="TOML config file ([catalog], [stats]).")]
RegionOption = Annotated[str | None, typer.Option("--region", help="Region tag (default: [stats] region).")]
HoursOption = Annotated[float, typer.Option("--hours", min=0.001, help="How far back to look.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


def _load(config: Path | None) -> tuple[Settings, StatsSettings, Catalog]:
    from pointsman.catalog import load_catalog
    from pointsman.config import load_config
    from pointsman.settings import Settings
    from pointsman.stats.settings import load_stats_settings

    settings = Settings(config_file=config) if config is not None else Settings()
    config_file = settings.resolved_config_file()
    return settings, load_stats_settings(load_config(config_file)), load_catalog(config_file)


def _usd(text: str | None) -> Decimal | None:
    from pointsman.errors import InvalidRequestError

    if text is None:
        return None
    try:
        return Decimal(text.strip().lstrip("$"))
    except InvalidOperation:
        raise InvalidRequestError(
            f"--budget must be an amount in USD such as 2 or 0.50, got {text!r}"
        ) from None


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def _print_summary(samples: list[Sample], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from pointsman.stats.summary import summarize

    table = Table(
        "endpoint",
        "ok",
        "TTFT p50",
        "TTFT p90",
        "ITL mean",
        "ITL p90",
        "tok/s",
        "cost $",
        "problems",
        title=title,
    )
    for s in summarize(samples):
        problems = ", ".join(p for p in (s.top_error, f"no usage ×{s.no_usage}" if s.no_usage else None) if p)
        table.add_row(
            s.endpoint,
            f"{s.ok}/{s.requests}",
            _ms(s.ttft_p50_ms),
            _ms(s.ttft_p90_ms),
            _ms(s.itl_mean_ms),
            _ms(s.itl_p90_ms),
            "-" if s.tokens_per_s is None else f"{s.tokens_per_s:.0f}",
            f"{s.cost_usd:.6f}",
            problems or "-",
        )
    Console().print(table)


@bench_app.command("run")
def run_command(
    endpoints: Annotated[
        str | None,
        typer.Option("--endpoints", help="Comma-separated model@provider (default: all with a key)."),
    ] = None,
    region: RegionOption = None,
    repeats: Annotated[
        int | None, typer.Option("--repeats", min=1, help="Requests per endpoint and prompt.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, help="Requests in flight.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", min=1, help="Answer length asked for.")
    ] = None,
    budget: Annotated[str | None, typer.Option("--budget", help="Most the run may spend, USD.")] = None,
    prompts: Annotated[str, typer.Option("--prompts", help="Standard prompts: short, long.")] = "short,long",
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stream the standard prompts to each endpoint and record TTFT, ITL, tokens/s, tokens and cost.
    The plan and its worst-case cost are printed before anything is sent."""
    import asyncio
    from dataclasses import replace

    from pointsman.stats.bench import plan_benchmark, run_benchmark
    from pointsman.stats.service import bench_config
    from pointsman.stats.store import StatsStore

    settings, stats, catalog = _load(config)
    base = bench_config(stats)
    overrides: dict[str, Any] = {
        "endpoints": _names(endpoints),
        "region": region,
        "repeats": repeats,
        "concurrency": concurrency,
        "max_tokens": max_tokens,
        "budget_usd": _usd(budget),
    }
    bench = replace(
        base, prompts=tuple(_names(prompts) or ()), **{k: v for k, v in overrides.items() if v is not None}
    )
    plan = plan_benchmark(catalog, bench)
    err = typer.echo if not as_json else (lambda m: typer.echo(m, err=True))
    err(f"plan: {plan.describe()}")
    for name, why in plan.skipped.items():
        err(f"skipped {name}: {why}")
    store = StatsStore.open(settings)
    try:
        result = asyncio.run(run_benchmark(plan, store))
    finally:
        store.close()
    if as_json:
        from pointsman.stats.summary import summarize

        out = {
            "run": result.run.id,
            "region": result.run.region,
            "cost_usd": str(result.run.cost_usd),
            "estimate_usd": str(result.run.estimate_usd),
            "endpoints": [s.to_dict() for s in summarize(result.samples)],
        }
        typer.echo(json.dumps(out))
        return
    _print_summary(
        result.samples, f"run {result.run.id[:8]} ({result.run.region}): spent ${result.run.cost_usd}"
    )
    if result.failures:
        typer.echo(f"{result.failures} request(s) failed; `pointsman bench show` lists them with the cause")


@bench_app.command("schedule")
def schedule_command(
    every_hours: Annotated[
        float | None,
        typer.Option("--every-hours", min=0.0001, help="Interval (default: [stats] bench_interval_s)."),
    ] = None,
    region: RegionOption = None,
    max_runs: Annotated[
        int | None, typer.Option("--max-runs", min=1, help="Stop after this many runs.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Re-run the benchmark every N hours (3 by default) for this region, until stopped. Runs by other
    processes of the same region count: the next run is due an interval after the newest one."""
    import asyncio
    from dataclasses import replace

    from pointsman.stats.bench import plan_benchmark, run_scheduled
    from pointsman.stats.scheduler import BenchScheduler
    from pointsman.stats.service import bench_config
    from pointsman.stats.store import StatsStore

    settings, stats, catalog = _load(config)
    bench = replace(bench_config(stats), region=region or stats.region)
    interval_s = every_hours * 3600 if every_hours is not None else stats.bench_interval_s
    store = StatsStore.open(settings)

    async def run_once() -> None:
        plan = plan_benchmark(catalog, bench)
        typer.echo(f"benchmark: {plan.describe()}")
        result = await run_scheduled(plan, store, interval_s=interval_s)
        if result is None:
            typer.echo(
                f"skipped: another process started a run of region {bench.region!r} within the interval"
            )
            return
        typer.echo(
            f"run {result.run.id[:8]} done: {result.failures} failure(s), spent ${result.run.cost_usd}"
        )

    scheduler = BenchScheduler(run_once, store, region=bench.region, interval_s=interval_s)
    typer.echo(f"benchmarking region {bench.region!r} every {interval_s / 3600:g} h; Ctrl-C stops")
    try:
        asyncio.run(scheduler.run_forever(max_runs=max_runs))
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


@bench_app.command("show")
def show_command(
    hours: HoursOption = 24.0,
    region: Annotated[str | None, typer.Option("--region", help="Only this region's samples.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recent runs, a summary per endpoint, and the figure the router uses for each."""
    from datetime import timedelta

    from rich.console import Console
    from rich.table import Table

    from pointsman.db import utcnow
    from pointsman.errors import UnknownNameError
    from pointsman.stats.figures import StatsLatency
    from pointsman.stats.store import StatsStore
    from pointsman.stats.summary import summarize

    settings, stats, catalog = _load(config)
    store = StatsStore.open(settings)
    try:
        runs = store.runs(region=region, limit=5)
        samples = store.samples(since=utcnow() - timedelta(hours=hours), region=region)
        latency = StatsLatency(
            store, region=region or stats.region, statistic=stats.statistic, window_s=stats.window_s
        )
        latency.refresh()
        figures = {}
        for name in sorted({s.endpoint for s in samples}):
            try:
                figures[name] = latency.describe(catalog.endpoint(name)).figure
            except UnknownNameError:
                continue  # measured once, since removed from the catalogue
    finally:
        store.close()
    if as_json:
        out = {
            "runs": [
                {
                    "id": r.id,
                    "region": r.region,
                    "started_at": r.started_at.isoformat(),
                    "status": r.status,
                    "cost_usd": None if r.cost_usd is None else str(r.cost_usd),
                    "note": r.note,
                }
                for r in runs
            ],
            "endpoints": [s.to_dict() for s in summarize(samples)],
            "figures": {
                k: {"ttft_ms": f.ttft_ms, "itl_ms": f.itl_ms, "source": f.source, "note": f.note}
                for k, f in figures.items()
            },
        }
        typer.echo(json.dumps(out))
        return
    console = Console()
    if not runs and not samples:
        console.print(f"no measurements in the last {hours:g} h; run `pointsman bench run`")
        return
    table = Table(
        "run", "region", "started (UTC)", "status", "requests", "cost $", "note", title="recent runs"
    )
    for r in runs:
        table.add_row(
            r.id[:8],
            r.region,
            r.started_at.strftime("%Y-%m-%d %H:%M"),
            r.status,
            str(r.planned_requests),
            "-" if r.cost_usd is None else f"{r.cost_usd:.6f}",
            r.note or "",
        )
    console.print(table)
    _print_summary(samples, f"last {hours:g} h" + (f", region {region}" if region else ""))
    table = Table("endpoint", "TTFT ms", "ITL ms", "source", "why", title="what the router uses")
    for name, f in figures.items():
        table.add_row(
            name, _ms(f.ttft_ms), _ms(f.itl_ms), f.source + (" (stale)" if f.stale else ""), f.note or ""
        )
    console.print(table)


@bench_app.command("plot")
def plot_command(
    out: Annotated[Path, typer.Option("--out", help="The PNG to write.")],
    hours: HoursOption = 24.0,
    region: Annotated[str | None, typer.Option("--region", help="Only this region's samples.")] = None,
    endpoints: Annotated[
        str | None, typer.Option("--endpoints", help="Comma-separated endpoints to draw.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """TTFT and ITL over time per endpoint, one panel each, as a PNG."""
    from datetime import timedelta

    from pointsman.db import utcnow
    from pointsman.stats.plots import plot_latency
    from pointsman.stats.store import StatsStore

    settings, _, _ = _load(config)
    store = StatsStore.open(settings)
    try:
        samples = store.samples(
            since=utcnow() - timedelta(hours=hours), region=region, endpoints=_names(endpoints)
        )
    finally:
        store.close()
    title = f"Measured latency, last {hours:g} h" + (f", region {region}" if region else "")
    title += " (lines: benchmark runs, dots: traffic)"
    plot_latency(samples, out, title=title)
    typer.echo(f"wrote {out} ({len(samples)} sample(s))")


@bench_app.command("prune")
def prune_command(
    older_than_days: Annotated[
        float, typer.Option("--older-than-days", min=0.01, help="Delete samples older than this.")
    ] = 30.0,
    config: ConfigOption = None,
) -> None:
    """Delete old samples (and the runs left without any), keeping the store small."""
    from datetime import timedelta

    from pointsman.db import utcnow
    from pointsman.stats.store import StatsStore

    settings, _, _ = _load(config)
    store = StatsStore.open(settings)
    try:
        deleted = store.prune(utcnow() - timedelta(days=older_than_days))
    finally:
        store.close()
    typer.echo(f"deleted {deleted} sample(s) older than {older_than_days:g} day(s)")
