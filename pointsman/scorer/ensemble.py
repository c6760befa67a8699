"""An ensemble of read-outs: K scorers trained with different seeds over the same frozen prompt states.

Two training runs of one recipe differ more than most recipe changes do: on arena-bench-v1-dev's
cross-validation, six runs of the shipped recipe ranged from APGR 0.49 to 0.55 and AIQ over the hull from -0.004
to +0.022 (docs/scorer.md). Reporting one run measures its luck; shipping one ships it. The ensemble averages its
members' predicted qualities, and its uncertainty adds their disagreement to their own predicted spread (the law
of total variance): where the members disagree the prediction is less certain, which is what a risk-averse
router (``risk:k``) should see.

Every member has the same config (the same LLMs, sources and shape), so the ensemble stands wherever one
``LatentScorer`` does in prediction: ``NeuralScorer``, checkpoints, adaptation (each member is adapted alone).
The members share the encoder pass; each adds only its small read-out (1-7 ms a request on one core).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pointsman.scorer.model import LatentScorer, ModelConfig, ScorerOutput

__all__ = ["ReadOut", "ScorerEnsemble", "members_of"]


class ScorerEnsemble(nn.Module):
    """K ``LatentScorer`` members with one config; predicts their mean quality and the total spread."""

    def __init__(self, members: Sequence[LatentScorer]) -> None:
        super().__init__()
        assert len(members) >= 2, "an ensemble needs at least two members; use the scorer itself for one"
        first = members[0].config
        for i, m in enumerate(members[1:], start=1):
            assert m.config == first, (
                f"ensemble member {i} has another config than member 0 (models, sources or shape differ); "
                "members must be trained with one recipe on the same data"
            )
        self.members = nn.ModuleList(members)

    def scorers(self) -> list[LatentScorer]:
        out = [m for m in self.members if isinstance(m, LatentScorer)]
        assert len(out) == len(self.members), "every ensemble member is a LatentScorer"
        return out

    @property
    def config(self) -> ModelConfig:
        return self.scorers()[0].config

    def head_index(self, source: str) -> int:
        return self.scorers()[0].head_index(source)

    def forward(
        self,
        states: torch.Tensor,
        mask: torch.Tensor,
        model_idx: torch.Tensor,
        source_idx: torch.Tensor,
        labels: torch.Tensor | None = None,
        label_weight: torch.Tensor | None = None,
        pair_loss: float = 0.0,
    ) -> tuple[ScorerOutput, torch.Tensor | None]:
        """states (B, T, C); mask (B, T); model_idx (B, Q); source_idx (B,). Prediction only: members are trained
        one by one (``pointsman.scorer.train``), so labels are refused."""
        assert labels is None, "an ensemble only predicts; train its members one by one"
        outs = [m(states, mask, model_idx, source_idx)[0] for m in self.scorers()]
        scores = torch.stack([o.scores for o in outs])  # (K, B, Q)
        spread = torch.stack([o.std for o in outs])  # (K, B, Q)
        mean = scores.mean(0)  # (B, Q)
        std = (spread.pow(2).mean(0) + scores.var(0, unbiased=False)).sqrt()  # (B, Q)
        logits = torch.logit(mean.clamp(1e-6, 1 - 1e-6))  # (B, Q)
        return ScorerOutput(scores=mean, std=std, logits=logits), None

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


ReadOut = LatentScorer | ScorerEnsemble  # what a checkpoint holds: one read-out, or several


def members_of(model: ReadOut) -> list[LatentScorer]:
    """The single scorers inside ``model`` (itself when it is one)."""
    return model.scorers() if isinstance(model, ScorerEnsemble) else [model]
