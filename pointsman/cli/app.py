"""The ``pointsman`` command line. Each command lives in its own module under ``pointsman.cli`` and only parses
arguments and calls library code; heavy imports (torch, the gateway) happen inside the commands."""

from __future__ import annotations

import importlib

import typer

from pointsman.errors import PointsmanError

app = typer.Typer(
    name="pointsman",
    help="Pointsman: send each prompt to the LLM endpoint that serves it best.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Each module defines ``register(app)``. Add a module here to add its commands.
COMMAND_MODULES: tuple[str, ...] = ("route", "train", "predict", "eval", "serve", "fake_provider", "db", "keys", "credits")


def build_app() -> typer.Typer:
    for name in COMMAND_MODULES:
        importlib.import_module(f"pointsman.cli.{name}").register(app)
    return app


def main() -> None:
    """Console entry point: run the CLI, turning Pointsman's own errors into a message and exit code 2."""
    from rich.console import Console

    cli = build_app()
    try:
        cli(standalone_mode=False)
    except PointsmanError as exc:
        from rich.markup import escape

        Console(stderr=True).print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        raise SystemExit(2) from None
    except typer.Abort:
        Console(stderr=True).print("aborted")
        raise SystemExit(130) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:  # click's usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise
