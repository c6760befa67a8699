"""What a routing decision costs: prices, token estimates, realised cost and expected cost.

- Prices are USD per 1M input and output tokens per model, from JSON files shaped like
  ``{"model": [input, output], "_note": "..."}`` (keys starting with ``_`` are ignored; later files override
  earlier ones), or from the shipped catalogue's cheapest endpoint per model when no file is given.
- Tokens are estimated as characters / 4 (``CHARS_PER_TOKEN``), for prompts and for answers alike.
- Realised cost of (prompt, model): the record's ``cost_usd`` when the source published it, else
  input tokens × input price + output tokens × output price with output tokens = ``output_chars`` / 4. When the
  answer's length was not published, the expected output length (below) stands in for it.
- Expected cost, which routing decisions use: the same formula with the output length a model *usually*
  produces, learned from the training split only — the mean over training answers of that model on the same
  task, else the same source, else any source, else over all models — never the length of the answer being
  evaluated.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pointsman.data import RoutingRecord
from pointsman.errors import DataError

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_OUTPUT_TOKENS",
    "OutputLengths",
    "Price",
    "catalogue_prices",
    "estimate_tokens",
    "expected_cost_matrix",
    "load_prices",
    "realised_cost_matrix",
    "require_prices",
]

CHARS_PER_TOKEN = 4.0
DEFAULT_OUTPUT_TOKENS = 256.0  # when no training answer of any model has a published length
_MIN_OBSERVATIONS = 5  # a task or source needs this many answers of a model before its own mean is used


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens."""

    input_per_m: float
    output_per_m: float

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        return (input_tokens * self.input_per_m + output_tokens * self.output_per_m) / 1e6


def estimate_tokens(chars: int | float) -> float:
    """Tokens in a text of ``chars`` characters (chars / 4, at least 1)."""
    return max(1.0, float(chars) / CHARS_PER_TOKEN)


def load_prices(paths: Iterable[str | os.PathLike[str]]) -> dict[str, Price]:
    """Read one or more price files; later files override earlier ones. Errors name the file and the model."""
    prices: dict[str, Price] = {}
    for path in paths:
        p = Path(path)
        try:
            obj = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DataError(
                "no such prices file; give a JSON file {model: [input, output]}", path=str(p)
            ) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read the prices file ({exc})", path=str(p)) from exc
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON ({exc.msg})", path=str(p), line=exc.lineno) from exc
        if not isinstance(obj, dict):
            raise DataError(
                f"expected an object {{model: [input, output]}}, got a {type(obj).__name__}", path=str(p)
            )
        for model, value in obj.items():
            if str(model).startswith("_"):
                continue
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
                and all(math.isfinite(v) and v >= 0 for v in value)
            )
            if not ok:
                raise DataError(
                    f"expected [input, output] USD per 1M tokens as two non-negative numbers, got {value!r}",
                    path=str(p),
                    field=str(model),
                )
            prices[str(model)] = Price(float(value[0]), float(value[1]))
    return prices


def catalogue_prices(config_file: Path | None = None) -> dict[str, Price]:
    """The catalogue's cheapest enabled endpoint per model (input + output price), as ``Price``."""
    from pointsman.catalog import load_catalog

    out: dict[str, Price] = {}
    for endpoint in load_catalog(config_file).endpoints():
        price = Price(float(endpoint.input_usd_per_mtok), float(endpoint.output_usd_per_mtok))
        best = out.get(endpoint.model)
        if best is None or price.input_per_m + price.output_per_m < best.input_per_m + best.output_per_m:
            out[endpoint.model] = price
    return out


def require_prices(prices: dict[str, Price], models: Sequence[str], origin: str) -> None:
    """Raise a ``DataError`` naming the price source and each model without a price."""
    missing = [m for m in models if m not in prices]
    if missing:
        example = ", ".join(f'"{m}": [input, output]' for m in missing[:3])
        raise DataError(
            f"no price for model(s) {', '.join(repr(m) for m in missing)}; add {example} (USD per 1M tokens) "
            "to a prices file and pass it with --prices, or leave the model out of --candidates",
            path=origin,
            field=missing[0],
        )


class OutputLengths:
    """Mean output tokens per model, learned from training records (task, then source, then overall)."""

    def __init__(self, records: Sequence[RoutingRecord]) -> None:
        by_task: dict[tuple[str, str, str], list[float]] = defaultdict(list)
        by_source: dict[tuple[str, str], list[float]] = defaultdict(list)
        by_model: dict[str, list[float]] = defaultdict(list)
        every: list[float] = []
        for r in records:
            for model, chars in r.output_chars.items():
                tokens = estimate_tokens(chars)
                by_task[(r.source, r.task, model)].append(tokens)
                by_source[(r.source, model)].append(tokens)
                by_model[model].append(tokens)
                every.append(tokens)
        self._task = {k: float(np.mean(v)) for k, v in by_task.items() if len(v) >= _MIN_OBSERVATIONS}
        self._source = {k: float(np.mean(v)) for k, v in by_source.items() if len(v) >= _MIN_OBSERVATIONS}
        self._model = {k: float(np.mean(v)) for k, v in by_model.items()}
        self._overall = float(np.mean(every)) if every else DEFAULT_OUTPUT_TOKENS

    def tokens(self, record: RoutingRecord, model: str) -> float:
        """Expected output tokens of ``model`` on a prompt like ``record`` (its answer length is not used)."""
        key = (record.source, record.task, model)
        if key in self._task:
            return self._task[key]
        if (record.source, model) in self._source:
            return self._source[(record.source, model)]
        return self._model.get(model, self._overall)


def expected_cost_matrix(
    records: Sequence[RoutingRecord], models: Sequence[str], prices: dict[str, Price], lengths: OutputLengths
) -> np.ndarray:
    """(N, M) USD a routing decision expects each call to cost."""
    out = np.zeros((len(records), len(models)))
    for i, r in enumerate(records):
        tokens_in = estimate_tokens(len(r.prompt))
        for j, m in enumerate(models):
            out[i, j] = prices[m].cost(tokens_in, lengths.tokens(r, m))
    return out


def realised_cost_matrix(
    records: Sequence[RoutingRecord], models: Sequence[str], prices: dict[str, Price], lengths: OutputLengths
) -> np.ndarray:
    """(N, M) USD each call actually cost: ``cost_usd``, else the price of the real answer length."""
    out = np.zeros((len(records), len(models)))
    for i, r in enumerate(records):
        tokens_in = estimate_tokens(len(r.prompt))
        for j, m in enumerate(models):
            if m in r.cost_usd:
                out[i, j] = r.cost_usd[m]
            elif m in r.output_chars:
                out[i, j] = prices[m].cost(tokens_in, estimate_tokens(r.output_chars[m]))
            else:
                out[i, j] = prices[m].cost(tokens_in, lengths.tokens(r, m))
    return out
