"""``pointsman train``: train the neural scorer on routing data, or adapt a trained one to new labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from pointsman.errors import ConfigError

__all__ = ["register"]


def _load_config(path: Path | None, quick: bool, seed: int | None, exclude: list[str]) -> object:
    from pydantic import ValidationError

    from pointsman.scorer.train import TrainConfig

    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the training config ({exc}); give a JSON object") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the training config must be a JSON object of TrainConfig fields")
    if seed is not None:
        data["seed"] = seed
    if exclude:
        data["exclude_sources"] = [*list(data.get("exclude_sources", [])), *exclude]
    try:
        return TrainConfig.quick(**data) if quick else TrainConfig(**data)
    except ValidationError as exc:
        raise ConfigError(f"{path or 'options'}: invalid training config:\n{exc}") from exc


def train_command(
    data: Annotated[list[Path], typer.Option("--data", help="Routing-data files (.jsonl or .jsonl.gz).")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (best/ and last/ inside).")] = Path(
        "scorer-out"
    ),
    config: Annotated[
        Path | None, typer.Option("--config", help="A JSON file of TrainConfig fields.")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last after a crash.")] = False,
    quick: Annotated[
        bool, typer.Option("--quick", help="A small recipe that trains in under 2 minutes.")
    ] = False,
    seed: Annotated[int | None, typer.Option("--seed")] = None,
    exclude_source: Annotated[
        list[str], typer.Option("--exclude-source", help="Leave a source out (repeatable).")
    ] = [],  # noqa: B006 - typer needs a literal default
    cache: Annotated[
        Path | None, typer.Option("--cache", help="Directory caching the encoder's prompt states.")
    ] = None,
    adapt_from: Annotated[
        Path | None,
        typer.Option(
            "--adapt-from", help="Adapt this checkpoint to the data instead of training from scratch."
        ),
    ] = None,
    source: Annotated[
        str | None, typer.Option("--source", help="With --adapt-from: the label source to adapt to.")
    ] = None,
    latents_only: Annotated[
        bool, typer.Option("--latents-only", help="With --adapt-from: fit only new LLMs' latents.")
    ] = False,
) -> None:
    """Train the neural quality scorer (or adapt one with --adapt-from)."""
    from rich.console import Console

    from pointsman.data import load_routing_files

    console = Console(stderr=True)
    records = load_routing_files(data)
    if adapt_from is not None:
        from pointsman.scorer.adapt import adapt_checkpoint

        target = adapt_checkpoint(adapt_from, records, out, source=source, latents_only=latents_only)
        console.print(f"adapted checkpoint written to {target}")
        return
    from pointsman.scorer.train import TrainConfig, train

    cfg = _load_config(config, quick, seed, exclude_source)
    assert isinstance(cfg, TrainConfig)
    result = train(records, cfg, out, cache_dir=cache, resume=resume, log=console.print)
    console.print(
        f"done: {result.steps} steps in {result.seconds:.0f}s, best validation loss {result.best_val_loss:.4f}; "
        f"checkpoint {result.out_dir / 'best'}"
    )


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
