"""The two routers ``custom train`` compares on the held-out split, registered so the evaluation harness can
build them by name like any other scorer.

- ``custom-router``: the checkpoint ``custom train`` just wrote. It was fine-tuned on the training split only,
  which is exactly the harness's training rows for the one "source test split" fold, so its ``fit`` loads it
  rather than training it a second time.
- ``off-the-shelf``: the base checkpoint as shipped, reading its default head. LLMs it never saw are scored
  from the mean latent (what it can say about an unknown model without labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pointsman.data import RoutingRecord
from pointsman.errors import ScorerError
from pointsman.scorer.base import SCORERS, Prediction, Scorer, register_scorer

__all__ = ["CUSTOM_ROUTER", "OFF_THE_SHELF"]

CUSTOM_ROUTER = "custom-router"
OFF_THE_SHELF = "off-the-shelf"


class _Loaded(Scorer):
    """Built from a checkpoint by ``fit``; never instantiated itself."""

    @property
    def models(self) -> list[str]:  # pragma: no cover - never instantiated
        raise NotImplementedError

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:  # pragma: no cover
        raise NotImplementedError


def _checkpoint(options: dict[str, Any], name: str) -> str:
    unknown = set(options) - {"checkpoint", "encoder"}
    if unknown or "checkpoint" not in options:
        raise ScorerError(
            f"router {name!r} takes the options checkpoint (required) and encoder, got {sorted(options)}; "
            "it is built by 'pointsman custom train'"
        )
    return str(options["checkpoint"])


class CustomRouterScorer(_Loaded):
    name = CUSTOM_ROUTER

    @classmethod
    def fit(
        cls,
        records: Sequence[RoutingRecord],
        *,
        seed: int = 0,
        target_source: str | None = None,
        **options: Any,
    ) -> Scorer:
        from pointsman.scorer.neural import NeuralScorer

        return NeuralScorer.load(_checkpoint(options, cls.name), encoder=options.get("encoder"))


class OffTheShelfScorer(_Loaded):
    name = OFF_THE_SHELF

    @classmethod
    def fit(
        cls,
        records: Sequence[RoutingRecord],
        *,
        seed: int = 0,
        target_source: str | None = None,
        **options: Any,
    ) -> Scorer:
        from pointsman.scorer.adapt import extend
        from pointsman.scorer.checkpoint import load_model
        from pointsman.scorer.neural import NeuralScorer

        base, _ = load_model(_checkpoint(options, cls.name))
        models = sorted({m for r in records for m in r.scores})
        known = extend(base, models, base.config.default_source)
        return NeuralScorer(known, encoder=options.get("encoder"))


for _cls in (CustomRouterScorer, OffTheShelfScorer):
    if _cls.name not in SCORERS:
        register_scorer(_cls)
