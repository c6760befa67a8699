"""``pointsman credits show|top-up|history|sweep``: an account's balance, credit and ledger."""

from __future__ import annotations

import json
from typing import Annotated

import typer

__all__ = ["register"]

credits_app = typer.Typer(help="Balances, top-ups and the ledger of an account.", no_args_is_help=True)

AccountOption = Annotated[str, typer.Option("--account", help="The account's name.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@credits_app.command("show")
def show_command(account: AccountOption, as_json: JsonOption = False) -> None:
    """The available balance, what was granted, topped up, spent and is held, and spend by endpoint."""
    from rich.console import Console
    from rich.table import Table

    from pointsman.ledger import Ledger, format_usd

    ledger = Ledger.open()
    try:
        info = ledger.account(account)
        totals = ledger.totals(info.id)
        spend = ledger.spend_by_endpoint(info.id)
    finally:
        ledger.close()
    if as_json:
        out: dict[str, object] = {
            "account": info.name,
            "balance_usd": format_usd(info.balance_pico).replace("$", ""),
        }
        out |= {f"{k}_usd": format_usd(v).replace("$", "") for k, v in totals.items()}
        out["spend_by_endpoint_usd"] = {k: format_usd(v).replace("$", "") for k, v in spend.items()}
        typer.echo(json.dumps(out))
        return
    console = Console()
    console.print(
        f"[bold]{info.name}[/]: {format_usd(info.balance_pico)} available", highlight=False, soft_wrap=True
    )
    console.print(
        f"granted {format_usd(totals['granted'])} · topped up {format_usd(totals['topped_up'])} · "
        f"spent {format_usd(totals['spent'])} · held for requests in flight {format_usd(totals['held'])}",
        highlight=False,
        soft_wrap=True,
    )
    if spend:
        table = Table("endpoint", "spent")
        for endpoint, pico in spend.items():
            table.add_row(endpoint, format_usd(pico))
        console.print(table)


@credits_app.command("top-up")
def top_up_command(
    account: AccountOption,
    usd: Annotated[str, typer.Option("--usd", help="How much to add, in USD (e.g. 20 or 2.50).")],
    note: Annotated[str | None, typer.Option("--note", help="Why (an invoice number, ...).")] = None,
    grant: Annotated[
        bool, typer.Option("--grant", help="Record it as free credit, not a paid top-up.")
    ] = False,
) -> None:
    """Add credit to an account (a ledger entry)."""
    from rich.console import Console

    from pointsman.ledger import Ledger, format_usd

    ledger = Ledger.open()
    try:
        info = ledger.account(account)
        add = ledger.grant if grant else ledger.top_up
        balance = add(info.id, usd, note=note)
    finally:
        ledger.close()
    Console().print(f"{info.name}: {format_usd(balance)} available", highlight=False, soft_wrap=True)


@credits_app.command("history")
def history_command(
    account: AccountOption,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many entries, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """The account's ledger entries, newest first."""
    from rich.console import Console
    from rich.table import Table

    from pointsman.ledger import Ledger, format_usd

    ledger = Ledger.open()
    try:
        entries = ledger.history(ledger.account(account).id, limit=limit)
    finally:
        ledger.close()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": e.id,
                        "kind": e.kind,
                        "amount_usd": format_usd(e.amount_pico).replace("$", ""),
                        "cost_usd": format_usd(e.cost_pico).replace("$", ""),
                        "request_id": e.request_id,
                        "endpoint": e.endpoint,
                        "input_tokens": e.input_tokens,
                        "output_tokens": e.output_tokens,
                        "input_usd_per_mtok": e.input_usd_per_mtok,
                        "output_usd_per_mtok": e.output_usd_per_mtok,
                        "note": e.note,
                        "created_at": e.created_at.isoformat(),
                    }
                    for e in entries
                ]
            )
        )
        return
    table = Table("when (UTC)", "kind", "amount", "cost", "endpoint", "tokens in/out", "request", "note")
    for e in entries:
        tokens = f"{e.input_tokens}/{e.output_tokens}" if e.input_tokens is not None else ""
        table.add_row(
            e.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            e.kind,
            format_usd(e.amount_pico),
            format_usd(e.cost_pico) if e.kind == "settle" else "",
            e.endpoint or "",
            tokens,
            e.request_id or "",
            e.note or "",
        )
    Console().print(table)


@credits_app.command("sweep")
def sweep_command() -> None:
    """Return the holds of reservations past their expiry (a gateway died mid-request)."""
    from rich.console import Console

    from pointsman.ledger import Ledger

    ledger = Ledger.open()
    try:
        count = ledger.expire_stale()
    finally:
        ledger.close()
    Console().print(f"returned {count} expired reservation(s)", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(credits_app, name="credits")
