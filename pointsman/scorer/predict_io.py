"""Reading prompt files and writing prediction files for ``pointsman predict``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pointsman.errors import DataError
from pointsman.scorer.base import Prediction

__all__ = ["read_prompts", "write_predictions"]


def read_prompts(path: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """Ids and prompts from JSON Lines ``{"id": str|int, "prompt": str}``; a bad line is a DataError."""
    p = Path(path)
    if not p.exists():
        raise DataError(
            'no such file; give a JSON Lines file with one {"id", "prompt"} per line', path=str(p)
        )
    ids: list[str] = []
    prompts: list[str] = []
    with p.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"not valid JSON ({exc.msg})", path=str(p), line=number) from exc
            if not isinstance(obj, dict):
                raise DataError('expected an object {"id", "prompt"}', path=str(p), line=number)
            if not isinstance(obj.get("prompt"), str):
                raise DataError("expected a string", path=str(p), line=number, field="prompt")
            ident = obj.get("id", number)
            if isinstance(ident, bool) or not isinstance(ident, str | int):
                raise DataError("expected a string or an integer", path=str(p), line=number, field="id")
            ids.append(str(ident))
            prompts.append(obj["prompt"])
    return ids, prompts


def write_predictions(path: str | os.PathLike[str], ids: list[str], prediction: Prediction) -> None:
    """One line per prompt: ``{"id", "quality": {model: 0..1}, "uncertainty": {model: std}}``."""
    with Path(path).open("w", encoding="utf-8") as handle:
        for i, ident in enumerate(ids):
            row = prediction.row(i)
            line = {
                "id": ident,
                "quality": {m: round(q, 6) for m, (q, _) in row.items()},
                "uncertainty": {m: None if u is None else round(u, 6) for m, (_, u) in row.items()},
            }
            handle.write(json.dumps(line) + "\n")
