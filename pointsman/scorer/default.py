"""The scorer Pointsman uses when none is named: the shipped neural scorer (``pointsman/data/scorer/default``),
loaded on first use, with the ``prior`` for the models its checkpoint has no latent for.

``ShippedScorer`` knows its models from the checkpoint's ``config.json`` alone, so building it, listing its
models and ranking a link that names its model (``model@provider``) never import torch; torch and MiniLM load
on the first prediction that needs a latent (``warm()`` does that ahead of time, as the gateway's lifespan
does). ``scorer_by_name`` is what ``pointsman route --scorer`` and the config's ``[routing] scorer`` go through.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pointsman.errors import ScorerError, UnknownNameError
from pointsman.scorer.base import Prediction, Scorer

if TYPE_CHECKING:
    from pointsman.scorer.neural import NeuralScorer

__all__ = ["DEFAULT_SCORER_NAME", "SCORER_CHOICES", "ShippedScorer", "default_scorer", "scorer_by_name"]

DEFAULT_SCORER_NAME = "neural"
SCORER_CHOICES = ("neural", "prior")  # what --scorer / [routing] scorer accept besides a checkpoint directory
WARM_UP_PROMPT = "Which number is the largest: 3, 9 or 4?"


def _packaged(name: str) -> Path:
    # The same place as pointsman.scorer.neural.packaged_checkpoint, without importing torch.
    return Path(__file__).resolve().parent.parent / "data" / "scorer" / name


def _checkpoint_models(directory: Path) -> list[str]:
    """The models a checkpoint has a latent for, read from its config.json (no torch)."""
    path = directory / "config.json"
    try:
        models = json.loads(path.read_text(encoding="utf-8"))["model"]["models"]
    except FileNotFoundError as exc:
        raise ScorerError(
            f"{directory} is not a scorer checkpoint (config.json is missing); give a directory written by "
            "'pointsman train', or reinstall pointsman for the shipped one"
        ) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ScorerError(
            f"{path} is not a valid scorer config ({exc}); retrain or restore the file"
        ) from exc
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ScorerError(
            f"{path}: 'model.models' must be a list of model names; retrain or restore the file"
        )
    return models


class ShippedScorer(Scorer):
    """A neural checkpoint behind the Scorer interface, loaded lazily, with a fallback for the models it has
    no latent for. Predictions mark those models in ``Prediction.fallback`` (the router flags them)."""

    name = "neural"

    def __init__(
        self,
        checkpoint: str | os.PathLike[str] | None = None,
        *,
        fallback: Scorer | None = None,
        torch_threads: int | None = None,
    ):
        """``torch_threads``: ``torch.set_num_threads`` once, when the checkpoint loads (process-wide: it applies
        to every torch computation in the process). None leaves torch as it is (``pointsman train`` and
        ``pointsman eval`` set their own)."""
        if torch_threads is not None and torch_threads < 1:
            raise ScorerError(f"torch_threads must be at least 1, not {torch_threads}")
        if fallback is None:
            from pointsman.scorer.prior import PriorScorer

            fallback = PriorScorer()
        self.checkpoint = Path(checkpoint) if checkpoint is not None else _packaged("default")
        self.own_models = _checkpoint_models(self.checkpoint)
        self.fallback = fallback
        self.torch_threads = torch_threads
        self._own = set(self.own_models)
        self._neural: NeuralScorer | None = None
        self._lock = threading.Lock()  # guards the load
        # One prediction at a time: the neural scorer's prompt-states memo is not thread-safe (the gateway
        # calls from several worker threads), and torch already spreads one prediction over the cores.
        self._predicting = threading.Lock()

    @property
    def models(self) -> list[str]:
        return self.own_models + [m for m in self.fallback.models if m not in self._own]

    @property
    def loaded(self) -> bool:
        """Whether torch, the encoder and the read-out are in memory."""
        return self._neural is not None

    def neural(self) -> NeuralScorer:
        """The loaded neural scorer (loads torch and the checkpoint on the first call; thread-safe)."""
        with self._lock:
            if self._neural is None:
                from pointsman.scorer.neural import NeuralScorer

                if self.torch_threads is not None:
                    import torch

                    torch.set_num_threads(self.torch_threads)
                self._neural = NeuralScorer.load(self.checkpoint, fallback=self.fallback)
            return self._neural

    def warm(self) -> None:
        """Load torch, MiniLM and the read-out and run one prediction, so the first real one pays nothing."""
        self.predict([WARM_UP_PROMPT], self.own_models[:1])

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        self.check_models(models)
        borrowed = {m: self.fallback.name for m in models if m not in self._own}
        if len(borrowed) == len(models):
            prediction = self.fallback.predict(prompts, models)  # nothing needs a latent: no torch
        else:
            neural = self.neural()
            with self._predicting:
                prediction = neural.predict(prompts, models)
        return dataclasses.replace(prediction, fallback=borrowed)


def default_scorer(*, torch_threads: int | None = None) -> Scorer:
    """The shipped default scorer, ready to predict (no training, no network; torch loads on first use)."""
    return ShippedScorer(torch_threads=torch_threads)


def scorer_by_name(name: str | None, *, torch_threads: int | None = None) -> Scorer:
    """``neural`` (or None): the shipped default; ``prior``: each model's mean quality (no torch at all);
    a directory: a checkpoint written by ``pointsman train``, with the prior for models it has no latent for.
    ``torch_threads``: see ``ShippedScorer`` (``pointsman serve`` and ``route`` pass
    ``Settings.scorer_torch_threads``)."""
    if name is None or name == DEFAULT_SCORER_NAME:
        return default_scorer(torch_threads=torch_threads)
    if name == "prior":
        from pointsman.scorer.prior import PriorScorer

        return PriorScorer()
    if os.path.isdir(name):
        return ShippedScorer(name, torch_threads=torch_threads)
    raise UnknownNameError("scorer", name, [*SCORER_CHOICES, "<checkpoint directory>"], param="scorer")
