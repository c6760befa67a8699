"""``pointsman predict``: predicted quality (and uncertainty) of each model's answer for a file of prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def predict_command(
    input: Annotated[Path, typer.Option("--input", help='JSON Lines, one {"id", "prompt"} per line.')],
    models: Annotated[str, typer.Option("--models", help="Comma-separated model names.")],
    output: Annotated[Path, typer.Option("--output", help="Where to write one prediction per line.")],
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="A checkpoint directory (default: the shipped one).")
    ] = None,
) -> None:
    """Predict each model's answer quality (0..1, the default head's scale) for every prompt."""
    from rich.console import Console

    from pointsman.scorer.neural import NeuralScorer
    from pointsman.scorer.predict_io import read_prompts, write_predictions

    console = Console(stderr=True)
    ids, prompts = read_prompts(input)
    names = [m.strip() for m in models.split(",") if m.strip()]
    scorer = NeuralScorer.load(checkpoint)
    details = scorer.predict_detailed(prompts, names)
    write_predictions(output, ids, details.prediction)
    cut = sum(details.truncated)
    empty = sum(1 for p in prompts if not p.strip())
    if cut:
        keep = scorer.model.config.max_tokens
        console.print(
            f"note: {cut} prompt(s) were longer than {keep} tokens; their head and tail were scored"
        )
    if empty:
        console.print(f"note: {empty} prompt(s) were empty; scored as an empty prompt")
    console.print(f"wrote {len(ids)} predictions for {len(names)} model(s) to {output}")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)
