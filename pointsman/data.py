"""Routing data: prompts with how well each LLM answered them, in one schema across sources.

A routing-data file is JSON Lines (optionally gzipped), one prompt per line:

    {"id": "source/...", "source": str, "task": str, "split": "train" | "test", "prompt": str,
     "label": str, "scores": {model: 0..1}, "output_chars": {model: int}, "cost_usd": {model: float}}

``scores`` is required and must hold at least one model; ``output_chars`` and ``cost_usd`` may be empty or
absent. Scales differ between sources (see ``label``), so anything that mixes sources keeps ``source`` with
each record. Loading validates every line and stops at the first bad one with a ``DataError`` that names
the file, the line and the field.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pointsman.errors import DataError

__all__ = [
    "RoutingRecord",
    "load_routing",
    "load_routing_files",
    "models_in",
    "shared_data_dir",
]

_SPLITS = ("train", "test")


@dataclass(frozen=True)
class RoutingRecord:
    """One prompt and the labelled quality of each model's answer to it."""

    id: str
    source: str
    task: str
    split: str
    prompt: str
    label: str
    scores: dict[str, float]
    output_chars: dict[str, int] = field(default_factory=dict)
    cost_usd: dict[str, float] = field(default_factory=dict)


def _open_text(path: Path) -> Iterator[str]:
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            yield from handle
    else:
        with path.open("r", encoding="utf-8") as handle:
            yield from handle


def _require_str(
    obj: dict[str, object], key: str, path: str, line: int, *, default: str | None = None
) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        got = "missing" if key not in obj else f"a {type(value).__name__}"
        raise DataError(f"expected a string, got {got}", path=path, line=line, field=key)
    return value


def _number_map(
    obj: dict[str, object],
    key: str,
    path: str,
    line: int,
    *,
    required: bool,
    lo: float | None,
    hi: float | None,
) -> dict[str, float]:
    value = obj.get(key)
    if value is None:
        if required:
            raise DataError("missing; expected an object {model: number}", path=path, line=line, field=key)
        return {}
    if not isinstance(value, dict):
        raise DataError(
            f"expected an object {{model: number}}, got a {type(value).__name__}",
            path=path,
            line=line,
            field=key,
        )
    out: dict[str, float] = {}
    for model, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
            raise DataError(
                f"model {model!r}: expected a finite number, got {number!r}", path=path, line=line, field=key
            )
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            raise DataError(
                f"model {model!r}: {number} is outside [{lo}, {hi}]", path=path, line=line, field=key
            )
        out[str(model)] = float(number)
    return out


def parse_record(obj: object, path: str, line: int) -> RoutingRecord:
    """Validate one decoded JSON line into a ``RoutingRecord``."""
    if not isinstance(obj, dict):
        raise DataError(f"expected a JSON object, got a {type(obj).__name__}", path=path, line=line)
    record_id = _require_str(obj, "id", path, line)
    source = _require_str(obj, "source", path, line)
    split = _require_str(obj, "split", path, line, default="train")
    if split not in _SPLITS:
        raise DataError(f"expected 'train' or 'test', got {split!r}", path=path, line=line, field="split")
    prompt = _require_str(obj, "prompt", path, line)
    scores = _number_map(obj, "scores", path, line, required=True, lo=0.0, hi=1.0)
    if not scores:
        raise DataError("no model has a score on this prompt", path=path, line=line, field="scores")
    output_chars = _number_map(obj, "output_chars", path, line, required=False, lo=0.0, hi=None)
    cost = _number_map(obj, "cost_usd", path, line, required=False, lo=0.0, hi=None)
    return RoutingRecord(
        id=record_id,
        source=source,
        task=_require_str(obj, "task", path, line, default=""),
        split=split,
        prompt=prompt,
        label=_require_str(obj, "label", path, line, default=""),
        scores=scores,
        output_chars={m: int(v) for m, v in output_chars.items()},
        cost_usd=cost,
    )


def load_routing(path: str | os.PathLike[str]) -> list[RoutingRecord]:
    """Load and validate one routing-data file (``.jsonl`` or ``.jsonl.gz``)."""
    p = Path(path)
    if not p.exists():
        raise DataError("no such file; give a path to a .jsonl or .jsonl.gz routing-data file", path=str(p))
    records: list[RoutingRecord] = []
    try:
        for number, text in enumerate(_open_text(p), start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"not valid JSON ({exc.msg} at column {exc.colno})", path=str(p), line=number
                ) from exc
            # Ids may repeat: a source can list the same prompt under two tasks (RouteLLM's MMLU does).
            # Splits are made by prompt text, so repeats always land on the same side.
            records.append(parse_record(obj, str(p), number))
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the file ({exc})", path=str(p)) from exc
    if not records:
        raise DataError("the file holds no records", path=str(p))
    return records


def load_routing_files(paths: Iterable[str | os.PathLike[str]]) -> list[RoutingRecord]:
    """Load several files into one list, keeping each record's source."""
    out: list[RoutingRecord] = []
    for path in paths:
        out.extend(load_routing(path))
    return out


def models_in(records: Sequence[RoutingRecord]) -> list[str]:
    """Every model with at least one score, sorted."""
    return sorted({m for r in records for m in r.scores})


def shared_data_dir() -> Path | None:
    """Where the public routing data lives: ``$POINTSMAN_SHARED_DATA``, else ``../shared/data`` beside the
    checkout. ``None`` when neither exists (a fresh clone without the data)."""
    env = os.environ.get("POINTSMAN_SHARED_DATA")
    if env:
        p = Path(env)
        return p if p.is_dir() else None
    repo = Path(__file__).resolve().parent.parent
    p = repo.parent / "shared" / "data"
    return p if p.is_dir() else None
