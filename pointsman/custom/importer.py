"""``custom import``: already-labelled prompts instead of collecting and judging.

Two formats:

- **JSONL** (``.jsonl``/``.jsonl.gz``) in Pointsman's routing-data schema (``pointsman.data``): ``id``,
  ``source``, ``prompt``, ``scores`` {model: 0..1}, optional ``split``, ``output_chars``, ``cost_usd``;
- **CSV**: a ``prompt`` column, optional ``id``, ``split`` (train/test) and ``reference`` columns, and one column
  per model holding that model's score on the prompt (an empty cell: not evaluated). Scores are 0..1, or 1..10
  grades with ``scale=10``.

Imported scores are stored as grades of the judge ``import``; ``custom train`` uses them like a judge's.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from pointsman.custom.collect import prompt_id
from pointsman.custom.store import CustomStore, PromptRow
from pointsman.errors import DataError

__all__ = ["ImportOutcome", "import_file"]

_RESERVED = ("prompt", "id", "split", "reference")


@dataclass(frozen=True)
class ImportOutcome:
    prompts: int
    new_prompts: int
    scores: int
    models: list[str]


def import_file(store: CustomStore, path: str | Path, *, scale: float = 1.0) -> ImportOutcome:
    p = Path(path)
    if not p.is_file():
        raise DataError(
            "no such file; give a routing-data .jsonl or a .csv with one score column per model", path=str(p)
        )
    if scale <= 0:
        raise DataError(f"--scale must be positive, got {scale}", field="scale")
    if p.suffix == ".csv":
        return _import_csv(store, p, scale)
    if p.name.endswith((".jsonl", ".jsonl.gz")):
        return _import_jsonl(store, p)
    raise DataError("unknown file type; give a .jsonl, .jsonl.gz or .csv file", path=str(p))


def _import_jsonl(store: CustomStore, path: Path) -> ImportOutcome:
    from pointsman.data import load_routing

    records = load_routing(path)
    rows = [PromptRow(r.id, r.prompt, None, r.split) for r in records]
    new = store.add_prompts(rows)
    count = 0
    models: set[str] = set()
    for r in records:
        for model, score in r.scores.items():
            store.import_score(r.id, model, score, path.name)
            chars = r.output_chars.get(model)
            cost = r.cost_usd.get(model)
            if chars is not None or cost is not None:
                store.import_answer(r.id, model, output_chars=chars, cost_usd=cost)
            models.add(model)
            count += 1
    store.add_endpoints(dict.fromkeys(models, ""))
    return ImportOutcome(len(rows), new, count, sorted(models))


def _import_csv(store: CustomStore, path: Path, scale: float) -> ImportOutcome:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the file ({exc})", path=str(path)) from exc
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    if "prompt" not in header:
        raise DataError(
            "the CSV needs a 'prompt' column and one score column per model (e.g. prompt,gpt-4o,llama-3-8b)",
            path=str(path),
            line=1,
        )
    models = [h for h in header if h not in _RESERVED]
    if not models:
        raise DataError("the CSV has no score columns; add one column per model", path=str(path), line=1)
    rows: list[PromptRow] = []
    scores: list[tuple[str, str, float]] = []
    for rec in reader:
        number = reader.line_num  # the physical line (blank lines are skipped)
        text_ = (rec.get("prompt") or "").strip()
        if not text_:
            raise DataError("empty prompt", path=str(path), line=number, field="prompt")
        pid = (rec.get("id") or "").strip() or prompt_id(text_)
        split = (rec.get("split") or "").strip() or None
        if split not in (None, "train", "test"):
            raise DataError(
                f"expected 'train' or 'test', got {split!r}", path=str(path), line=number, field="split"
            )
        rows.append(PromptRow(pid, text_, (rec.get("reference") or "").strip() or None, split))
        for model in models:
            cell = (rec.get(model) or "").strip()
            if not cell:
                continue
            try:
                value = float(cell) / scale
            except ValueError:
                raise DataError(f"not a number: {cell!r}", path=str(path), line=number, field=model) from None
            if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                hint = " (1..10 grades? pass --scale 10)" if scale == 1.0 and float(cell) > 1 else ""
                raise DataError(
                    f"score {cell} is outside 0..{scale:g}{hint}", path=str(path), line=number, field=model
                )
            scores.append((pid, model, value))
    if not rows:
        raise DataError("the CSV holds no rows", path=str(path))
    new = store.add_prompts(rows)
    for pid, model, value in scores:
        store.import_score(pid, model, value, path.name)
    store.add_endpoints(dict.fromkeys(models, ""))
    return ImportOutcome(len(rows), new, len(scores), models)
