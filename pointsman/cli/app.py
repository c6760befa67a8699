"""The ``pointsman`` command line. Each command lives in its own module under ``pointsman.cli`` and only parses
arguments and calls library code; heavy imports (torch, the gateway) happen inside the commands."""

from __future__ import annotations

import importlib

import typer

from pointsman.errors import PointsmanError


def command_modules() -> list[str]:
    """Every module in ``pointsman.cli`` that defines ``register(app)``: adding a command is adding a module."""
    import pkgutil

    import pointsman.cli as package

    return sorted(
        info.name for info in pkgutil.iter_modules(package.__path__) if info.name not in ("app", "__main__")
    )


def build_app() -> typer.Typer:
    """A new CLI with every command registered (a new one per call, so building it twice registers nothing twice)."""
    app = typer.Typer(
        name="pointsman",
        help="Pointsman: send each prompt to the LLM endpoint that serves it best.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    for name in command_modules():
        module = importlib.import_module(f"pointsman.cli.{name}")
        register = getattr(module, "register", None)
        assert callable(register), f"pointsman.cli.{name} must define register(app)"
        register(app)
    return app


def main() -> None:
    """Console entry point. Click reports usage errors itself (exit 2); Pointsman's own errors become one
    message on stderr and exit code 2, never a traceback."""
    from rich.console import Console
    from rich.markup import escape

    cli = build_app()
    try:
        cli(prog_name="pointsman")
    except PointsmanError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        raise SystemExit(2) from None
