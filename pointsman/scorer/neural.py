"""The ``neural`` scorer: the frozen encoder plus a trained read-out checkpoint, behind the Scorer interface.

``NeuralScorer.load()`` loads the trained default shipped in the package (``pointsman/data/scorer/default``);
``NeuralScorer.load(path)`` any checkpoint written by ``pointsman train``. ``fit`` (used by the evaluation
harness) starts from the shipped *base* checkpoint — trained on the public data without arena-bench-v1-dev — and
adapts only the target source's head, its per-LLM priors and the latents of LLMs the base never saw, so a
cross-validation fold's test prompts are never seen by any part of the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pointsman.data import RoutingRecord
from pointsman.errors import ScorerError
from pointsman.scorer.base import Prediction, Scorer, register_scorer
from pointsman.scorer.encoder import LoadedEncoder, load_encoder
from pointsman.scorer.ensemble import ReadOut
from pointsman.scorer.memo import StatesMemo
from pointsman.scorer.states import PromptStates, tokenize_prompts

__all__ = ["NeuralScorer", "PredictionDetails", "packaged_checkpoint"]


@lru_cache(maxsize=2)
def shared_encoder(name: str) -> LoadedEncoder:
    """One loaded (and checksum-verified) encoder per process, shared by every neural scorer."""
    return load_encoder(name)


_MEMO = StatesMemo()


def packaged_checkpoint(name: str = "default") -> Path:
    """The checkpoint shipped inside the package: ``default`` (what ``pointsman route`` uses) or ``base``."""
    return Path(__file__).resolve().parent.parent / "data" / "scorer" / name


@dataclass
class PredictionDetails:
    prediction: Prediction
    truncated: list[bool]  # prompts longer than the encoder's window (head and tail were kept)


@register_scorer
class NeuralScorer(Scorer):
    """Predicts each candidate's answer quality from the prompt's encoder states and the candidate's latent."""

    name = "neural"

    def __init__(
        self,
        model: ReadOut,
        *,
        encoder: LoadedEncoder | None = None,
        source: str | None = None,
        fallback: Scorer | None = None,
    ) -> None:
        self.model = model.eval()
        self._encoder = encoder
        self.fallback = fallback  # scores the models the checkpoint has no latent for (e.g. the prior)
        self.source = source or model.config.default_source
        if self.source not in model.config.sources and self.source not in model.config.head_of:
            raise ScorerError(
                f"the checkpoint has no head for source {self.source!r}; known: {', '.join(model.config.sources)}"
            )

    @classmethod
    def load(
        cls,
        checkpoint: str | os.PathLike[str] | None = None,
        *,
        encoder: LoadedEncoder | None = None,
        fallback: Scorer | None = None,
    ) -> NeuralScorer:
        from pointsman.scorer.checkpoint import load_model

        path = Path(checkpoint) if checkpoint is not None else packaged_checkpoint()
        model, _ = load_model(path)
        return cls(model, encoder=encoder, fallback=fallback)

    @property
    def encoder(self) -> LoadedEncoder:
        if self._encoder is None:
            self._encoder = shared_encoder(self.model.config.encoder)
        return self._encoder

    @property
    def models(self) -> list[str]:
        known = list(self.model.config.models)
        if self.fallback is not None:
            known += [m for m in self.fallback.models if m not in set(known)]
        return known

    def prompt_states(self, prompts: Sequence[str]) -> PromptStates:
        return _MEMO.states(self.encoder, list(prompts), self.model.config.max_tokens)

    @torch.no_grad()
    def predict_states(
        self, states: PromptStates, models: Sequence[str], *, batch_size: int = 32
    ) -> Prediction:
        """Scores from precomputed prompt states (the encoder's top layer)."""
        self.check_models(models)
        cfg = self.model.config
        assert all(m in cfg.models for m in models), "models without a latent go to the fallback"
        idx = torch.tensor([cfg.models.index(m) for m in models], dtype=torch.long)
        head = self.model.head_index(self.source)
        N, M = len(states), len(models)
        quality = np.zeros((N, M), dtype=np.float32)
        std = np.zeros((N, M), dtype=np.float32)
        lengths = states.lengths().tolist()
        order = sorted(range(N), key=lambda i: lengths[i])
        for start in range(0, N, batch_size):
            rows = order[start : start + batch_size]
            T = max(lengths[i] for i in rows)
            x = torch.zeros(len(rows), T, cfg.n_embd)  # (B, T, C)
            mask = torch.zeros(len(rows), T, dtype=torch.bool)  # (B, T)
            for j, i in enumerate(rows):
                x[j, : lengths[i]] = states.get(i).float()
                mask[j, : lengths[i]] = True
            model_idx = idx.unsqueeze(0).expand(len(rows), M)  # (B, M)
            source_idx = torch.full((len(rows),), head, dtype=torch.long)  # (B,)
            out, _ = self.model(x, mask, model_idx, source_idx)
            quality[rows] = out.scores.numpy()
            std[rows] = out.std.numpy()
        return Prediction(models=list(models), quality=quality, uncertainty=std)

    def predict_detailed(self, prompts: Sequence[str], models: Sequence[str]) -> PredictionDetails:
        self.check_models(models)
        if not prompts:
            empty = np.zeros((0, len(models)), dtype=np.float32)
            return PredictionDetails(Prediction(list(models), empty, empty.copy()), [])
        _, truncated = tokenize_prompts(self.encoder, list(prompts), self.model.config.max_tokens)
        own = [m for m in models if m in self.model.config.models]
        if len(own) == len(models):
            return PredictionDetails(self.predict_states(self.prompt_states(prompts), models), truncated)
        assert self.fallback is not None  # check_models let the others through
        quality = np.zeros((len(prompts), len(models)), dtype=np.float32)
        std = np.zeros_like(quality)
        if own:
            mine = self.predict_states(self.prompt_states(prompts), own)
            cols = [models.index(m) for m in own]
            quality[:, cols] = mine.quality
            std[:, cols] = mine.uncertainty if mine.uncertainty is not None else 0.0
        rest = [m for m in models if m not in self.model.config.models]
        theirs = self.fallback.predict(prompts, rest)
        cols = [models.index(m) for m in rest]
        quality[:, cols] = theirs.quality
        std[:, cols] = theirs.uncertainty if theirs.uncertainty is not None else 0.0
        return PredictionDetails(Prediction(list(models), quality, std), truncated)

    def predict(self, prompts: Sequence[str], models: Sequence[str]) -> Prediction:
        return self.predict_detailed(prompts, models).prediction

    @classmethod
    def fit(
        cls,
        records: Sequence[RoutingRecord],
        *,
        seed: int = 0,
        target_source: str | None = None,
        **options: Any,
    ) -> NeuralScorer:
        """Adapt the shipped base checkpoint to ``records`` (see the module docstring).

        Options: ``base`` (a checkpoint directory, default the packaged base), ``init_source`` (the head a
        new source starts from, default the base's default source), ``steps``, ``lr``,
        ``train_latents`` ("none", "new", "all"), ``head`` ("offsets": only the per-LLM offsets and the head's
        bias, the default; "row": the head's whole read-out), ``head_anchor``, ``pair_loss`` (see
        ``AdaptOptions``), ``encoder`` (a LoadedEncoder to reuse)."""
        from pointsman.scorer.adapt import AdaptOptions, adapt, extend
        from pointsman.scorer.checkpoint import load_model

        base_dir = options.pop("base", None) or packaged_checkpoint("base")
        encoder = options.pop("encoder", None)
        init_source = options.pop("init_source", None)
        adapt_keys = {"steps", "lr", "train_latents", "anchor", "head", "head_anchor", "pair_loss"}
        unknown = set(options) - adapt_keys
        if unknown:
            raise ScorerError(
                f"unknown option(s) for the neural scorer: {', '.join(sorted(unknown))}; "
                f"known: base, encoder, init_source, {', '.join(sorted(adapt_keys))}"
            )
        base, _ = load_model(base_dir)
        if not records:
            return cls(base, encoder=encoder)
        source = target_source or records[0].source
        same = [r for r in records if r.source == source]
        records = same or list(records)
        models = sorted({m for r in records for m in r.scores})
        new_models = [m for m in models if m not in base.config.models]
        if init_source is None and source in base.config.sources:
            init_source = source
        extended = extend(base, models, source, init_source=init_source)
        scorer = cls(extended, encoder=encoder, source=source)
        prompts = list(dict.fromkeys(r.prompt for r in records))
        states = scorer.prompt_states(prompts)
        row = {p: i for i, p in enumerate(prompts)}
        opts = AdaptOptions(seed=seed, **options)
        adapted = adapt(extended, records, states, row, source=source, new_models=new_models, options=opts)
        return cls(adapted, encoder=scorer._encoder, source=source)
