"""The one interface every quality scorer implements, and the one registry of scorers.

A scorer predicts, for each prompt and each candidate model, the quality of that model's answer on the
default label scale (a GPT-4 judge's grade of a chat answer, 0..1), optionally with an uncertainty (a standard
deviation on the same scale). The objective (weights, thresholds, confidence) is applied elsewhere, once, on
top of these numbers (``pointsman.objective``).

Scorers that learn from routing data implement ``fit``; the evaluation harness and ``pointsman train`` build
them through ``SCORERS`` by name, so a baseline and the neural scorer are trained and compared the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from pointsman.errors import UnknownNameError

if TYPE_CHECKING:
    from pointsman.data import RoutingRecord

__all__ = ["SCORERS", "Prediction", "Scorer", "load_registry", "register_scorer"]


@dataclass(frozen=True)
class Prediction:
    """Predicted quality for N prompts × M models. ``uncertainty`` is a std-dev on the same scale, or None.
    ``fallback`` names the models a scorer did not predict itself, each with the scorer that did (e.g. the
    neural scorer's prior for a model its checkpoint has no latent for); the router flags them."""

    models: list[str]
    quality: np.ndarray  # (N, M) float, 0..1
    uncertainty: np.ndarray | None = None  # (N, M) float >= 0
    fallback: Mapping[str, str] = field(default_factory=dict)  # {model: name of the scorer that predicted it}

    def __post_init__(self) -> None:
        assert self.quality.ndim == 2, f"quality must be (N, M), got shape {self.quality.shape}"
        assert self.quality.shape[1] == len(self.models), (
            f"quality has {self.quality.shape[1]} columns for {len(self.models)} models"
        )
        if self.uncertainty is not None:
            assert self.uncertainty.shape == self.quality.shape, "uncertainty must have the shape of quality"
        assert set(self.fallback) <= set(self.models), "fallback names a model that was not predicted"

    def row(self, i: int) -> dict[str, tuple[float, float | None]]:
        """Prompt ``i`` as {model: (quality, uncertainty)}."""
        unc = self.uncertainty
        return {
            m: (float(self.quality[i, j]), None if unc is None else float(unc[i, j]))
            for j, m in enumerate(self.models)
        }


class Scorer(ABC):
    """Predicts answer quality per (prompt, model)."""

    name: ClassVar[str]

    @property
    @abstractmethod
    def models(self) -> list[str]:
        """The models this scorer can score."""

    @abstractmethod
    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        """Quality of each model's answer to each prompt. Unknown models raise ``UnknownNameError``."""

    def warm(self) -> None:  # noqa: B027 - a hook: a no-op unless the scorer has something to load
        """Load whatever the first prediction would load (weights, encoder), so that a service can pay for it
        at startup instead of on its first request. Scorers with nothing to load keep this no-op."""

    @classmethod
    def fit(
        cls,
        records: Sequence[RoutingRecord],
        *,
        seed: int = 0,
        target_source: str | None = None,
        **options: Any,
    ) -> Scorer:
        """Train on routing records. ``target_source`` names the source whose label scale predictions should be
        on (default: the scorer's own default head). Scorers that do not learn raise NotImplementedError."""
        raise NotImplementedError(f"scorer {cls.name!r} cannot be trained")

    def check_models(self, models: Sequence[str]) -> None:
        known = set(self.models)
        for m in models:
            if m not in known:
                raise UnknownNameError("model", m, self.models, param="models")


SCORERS: dict[str, type[Scorer]] = {}


def register_scorer(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: make a scorer available by its ``name`` to the CLI, the config and the evaluation."""
    assert cls.name not in SCORERS, f"scorer {cls.name!r} registered twice"
    SCORERS[cls.name] = cls
    return cls


_SCORER_MODULES = (
    "pointsman.scorer.prior",
    "pointsman.baselines",
    "pointsman.scorer.neural",
)


def load_registry() -> dict[str, type[Scorer]]:
    """Import the modules that register scorers (lazily: torch is only imported when needed)."""
    import importlib

    for module in _SCORER_MODULES:
        importlib.import_module(module)
    return SCORERS
