"""``pointsman keys create|list|revoke``: API keys, shown once and stored only as a hash."""

from __future__ import annotations

import json
from typing import Annotated

import typer

__all__ = ["register"]

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@keys_app.command("create")
def create_command(
    account: Annotated[str, typer.Option("--account", help="The account to bill (created if missing).")],
    credit: Annotated[
        str | None,
        typer.Option(
            "--credit",
            help="USD to grant: a new account's signup credit (default: POINTSMAN_LEDGER_SIGNUP_CREDIT_USD, 50), "
            "or extra credit for an existing one.",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A label for the key.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May call the admin endpoints (top-ups).")] = False,
    budget: Annotated[
        str | None, typer.Option("--budget", help="Most USD this key may spend per period.")
    ] = None,
    budget_period: Annotated[
        str, typer.Option("--budget-period", help="day, week or month (UTC).")
    ] = "month",
    rpm: Annotated[int | None, typer.Option("--rpm", help="Most requests per minute for this key.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create an API key and print it once: only its hash is stored, so copy it now."""
    from rich.console import Console

    from pointsman.ledger import KeyStore, Ledger, format_usd

    ledger = Ledger.open()
    try:
        created = KeyStore(ledger).create(
            account,
            credit_usd=credit,
            name=name,
            admin=admin,
            budget_usd=budget,
            budget_period=budget_period,
            rpm_limit=rpm,
        )
        balance = ledger.balance(created.info.account_id)
    finally:
        ledger.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "key": created.key,
                    "prefix": created.info.prefix,
                    "account": created.info.account_name,
                    "account_created": created.account_created,
                    "admin": created.info.is_admin,
                    "balance_usd": str(format_usd(balance))[1:],
                }
            )
        )
        return
    err = Console(stderr=True)
    what = "new account" if created.account_created else "account"
    err.print(
        f"Created {'an admin' if admin else 'a'} key for {what} [bold]{created.info.account_name}[/] "
        f"(balance {format_usd(balance)}). It is shown only this once:",
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(created.key)


@keys_app.command("list")
def list_command(
    account: Annotated[str | None, typer.Option("--account", help="Only this account's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List keys by prefix (the keys themselves are not stored)."""
    from rich.console import Console
    from rich.table import Table

    from pointsman.ledger import KeyStore, Ledger, format_usd

    ledger = Ledger.open()
    try:
        keys = KeyStore(ledger).list(account)
    finally:
        ledger.close()
    if as_json:
        rows = [
            {
                "prefix": k.prefix,
                "account": k.account_name,
                "name": k.name,
                "admin": k.is_admin,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                "budget_usd": format_usd(k.budget_pico)[1:] if k.budget_pico is not None else None,
                "budget_period": k.budget_period,
                "rpm": k.rpm_limit,
            }
            for k in keys
        ]
        typer.echo(json.dumps(rows))
        return
    table = Table("key", "account", "name", "admin", "created", "status", "budget", "rpm")
    for k in keys:
        table.add_row(
            k.prefix + "…",
            k.account_name,
            k.name or "",
            "yes" if k.is_admin else "",
            k.created_at.strftime("%Y-%m-%d %H:%M"),
            f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active",
            f"{format_usd(k.budget_pico)}/{k.budget_period}" if k.budget_pico is not None else "",
            str(k.rpm_limit or ""),
        )
    Console().print(table)


@keys_app.command("revoke")
def revoke_command(
    prefix: Annotated[str, typer.Argument(help="The key's prefix as `keys list` shows it.")],
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from rich.console import Console

    from pointsman.ledger import KeyStore, Ledger

    ledger = Ledger.open()
    try:
        info = KeyStore(ledger).revoke(prefix)
    finally:
        ledger.close()
    Console().print(f"revoked {info.prefix}… of account {info.account_name}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
