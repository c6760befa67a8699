"""The neural quality model: a frozen BERT-like encoder read out by one learned latent per LLM.

The prompt's work is done once: the frozen encoder (all-MiniLM-L6-v2 by default) turns the prompt into
top-layer token states. Each candidate LLM then enters late, as a learned latent *query token* that attends to
those states through a few small read-out blocks; prompt tokens never attend to a latent, so their states are
shared by every LLM and scoring M LLMs costs one encoder pass plus M tiny attention reads. The M latents of one
prompt sit side by side along the query axis and never see each other, so each is scored exactly as if it were
alone in its own sequence (any subset of the known LLMs can be scored in one call).

Heads: one per data source (label scales differ: 0/1 correctness, GPT-4 grades, preference against a
reference model). Each head predicts a mean (a logit, trained with cross-entropy against the 0..1 label) and a
standard deviation (trained with a Gaussian likelihood on the residual), plus a per-(source, LLM) offset that
holds each LLM's prior mean quality on that scale. An optional *gap* term (``pair_loss``) also fits the
differences between the LLMs labelled on the same prompt: routing only ever compares LLMs on one prompt, and the
prompt's shared difficulty, which dominates the per-LLM loss, cancels in those differences.

This module holds only the trainable part; ``pointsman.scorer.neural`` joins it to the encoder.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LatentScorer", "ModelConfig", "PromptSide", "ScorerOutput", "gap_loss"]

# The length feature is (log tokens - MID) / SPREAD: about -1..+1 from 7 to 150 tokens ([CLS] and [SEP] included)
LOG_TOKENS_MID = 3.5
LOG_TOKENS_SPREAD = 1.5


@dataclass
class ModelConfig:
    """Everything needed to rebuild the model; saved beside its weights."""

    models: list[str]
    sources: list[str]
    default_source: str
    encoder: str = "sentence-transformers/all-MiniLM-L6-v2"
    max_tokens: int = 256  # prompt tokens the encoder sees (head and tail kept)
    n_embd: int = 384  # the encoder's hidden size C
    d_model: int = 256  # width of the latent queries D
    n_layer: int = 2  # read-out blocks
    n_head: int = 4
    dropout: float = 0.1
    token_stride: int = 1  # average each run of this many prompt states before the read-out (cheaper)
    # add the prompt's length (log of its token count in the encoder's window) to every query: mean pooling and
    # softmax attention are blind to how long the prompt is, and longer prompts are harder in the public data
    length_feature: bool = False
    # sources whose labels share another source's head (same scale), e.g. {"mtbench": "arena-bench-v1"}
    head_of: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.models, "a scorer needs at least one model"
        assert len(set(self.models)) == len(self.models), "model names must be unique"
        assert self.default_source in self.sources, (
            f"default source {self.default_source!r} is not among the sources {self.sources}"
        )
        assert self.d_model % self.n_head == 0, "d_model must be a multiple of n_head"
        for src, target in self.head_of.items():
            assert target in self.sources, f"head_of maps {src!r} to unknown source {target!r}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ModelConfig:
        return ModelConfig(**data)


@dataclass
class ScorerOutput:
    scores: torch.Tensor  # (B, Q) predicted quality in 0..1
    std: torch.Tensor  # (B, Q) predicted standard deviation of the label around ``scores``
    logits: torch.Tensor  # (B, Q)


@dataclass
class PromptSide:
    """What every LLM's latent reads: the prompt's pooled summary, keys and values."""

    pooled: torch.Tensor  # (B, D)
    k: torch.Tensor  # (B, nh, T', hd)
    v: torch.Tensor  # (B, nh, T', hd)
    mask: torch.Tensor  # (B, 1, 1, T') bool


class CrossAttention(nn.Module):
    """Latent queries attend to the prompt's token states; nothing attends to the queries."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.q = nn.Linear(cfg.d_model, cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.dropout = cfg.dropout

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, Q, D = x.shape  # x: (B, Q, D) latent queries; k, v: (B, nh, T, hd); mask: (B, 1, 1, T)
        hd = D // self.n_head
        q = self.q(x).view(B, Q, self.n_head, hd).transpose(1, 2)  # (B, nh, Q, hd)
        # Plain attention: with a handful of queries per prompt it beats CPU flash attention (whose backward
        # also materialises key/value gradients the frozen prompt side never needs).
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))  # (B, nh, Q, T)
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        att = F.dropout(att, p=self.dropout, training=self.training)
        y = att @ v  # (B, nh, Q, hd)
        y = y.transpose(1, 2).reshape(B, Q, D)  # (B, Q, D)
        return self.proj(y)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))  # (B, Q, D)


class ReadoutBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.attn = CrossAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), k, v, mask)  # (B, Q, D)
        return x + self.mlp(self.ln_2(x))  # (B, Q, D)


def gap_loss(scores: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Squared error of the predicted quality *differences* between every two LLMs labelled on one prompt:
    mean over pairs (i, j) of ((s_i - s_j) - (y_i - y_j))^2, each pair weighted by sqrt(w_i w_j).
    scores, labels, weight: (B, Q); weight 0 where a label is absent. A prompt with one label adds nothing."""
    assert scores.shape == labels.shape == weight.shape, "scores, labels and weight must all be (B, Q)"
    err = scores - labels  # (B, Q); a pair's gap error is err_i - err_j
    diff = err.unsqueeze(2) - err.unsqueeze(1)  # (B, Q, Q)
    pair_w = torch.sqrt(weight.unsqueeze(2) * weight.unsqueeze(1)).triu(diagonal=1)  # (B, Q, Q), i < j
    return (diff**2 * pair_w).sum() / pair_w.sum().clamp(min=1e-8)


class LatentScorer(nn.Module):
    """Per-LLM latent queries over frozen prompt states, with per-source heads."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.config = cfg
        M, S, C, D = len(cfg.models), len(cfg.sources), cfg.n_embd, cfg.d_model
        self.ln_prompt = nn.LayerNorm(C, elementwise_affine=False)  # fixed: no gradient into the prompt side
        self.kv = nn.Linear(C, 2 * D)  # the prompt's keys and values, computed once and read by every block
        self.latent = nn.Embedding(M, D)  # one learned latent per LLM
        self.pool = nn.Linear(C, D)  # the prompt's mean state, added to every query
        self.length = nn.Linear(1, D) if cfg.length_feature else None  # the prompt's log length, likewise
        self.blocks = nn.ModuleList(ReadoutBlock(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(D)
        self.head_w = nn.Parameter(torch.zeros(S, 2, D))  # per source: (mean, log-std) read-out
        self.head_b = nn.Parameter(torch.zeros(S, 2))
        self.prior = nn.Parameter(torch.zeros(S, M))  # per source and LLM: prior mean (a logit offset)
        nn.init.normal_(self.latent.weight, std=0.02)
        nn.init.normal_(self.head_w, std=0.02)
        with torch.no_grad():
            self.head_b[:, 1] = math.log(math.expm1(0.25))  # softplus^-1: start at std 0.25

    def head_index(self, source: str) -> int:
        """The head a source's labels are read from (its own, or the one ``head_of`` shares)."""
        cfg = self.config
        return cfg.sources.index(cfg.head_of.get(source, source))

    def encode_prompt(self, states: torch.Tensor, mask: torch.Tensor) -> PromptSide:
        """The prompt's share of the work, done once for any number of LLMs.
        states (B, T, C) the encoder's top layer; mask (B, T) bool, True for real tokens."""
        B, T, C = states.shape
        assert self.config.n_embd == C, f"states have width {C}, the model expects {self.config.n_embd}"
        assert mask.shape == (B, T), f"mask must be (B, T) = {(B, T)}, got {tuple(mask.shape)}"
        h = self.ln_prompt(states.float())  # (B, T, C)
        m = mask.to(h.dtype).unsqueeze(-1)  # (B, T, 1)
        h = h * m  # padding is zero from here on
        count = m.sum(1).clamp(min=1.0)  # (B, 1) real tokens
        pooled = h.sum(1) / count  # (B, C)
        summary = self.pool(pooled)  # (B, D)
        if self.length is not None:
            summary = summary + self.length((count.log() - LOG_TOKENS_MID) / LOG_TOKENS_SPREAD)  # (B, D)
        s = self.config.token_stride
        if s > 1:  # mean of each run of s real tokens: (B, T, C) -> (B, ceil(T/s), C)
            pad = (-T) % s
            h = F.pad(h, (0, 0, 0, pad)).view(B, -1, s, C).sum(2)  # (B, T', C)
            run = F.pad(m, (0, 0, 0, pad)).view(B, -1, s, 1).sum(2)  # (B, T', 1)
            h = h / run.clamp(min=1.0)
            mask = run.squeeze(-1) > 0  # (B, T')
            T = h.shape[1]
        D, nh = self.config.d_model, self.config.n_head
        k, v = self.kv(h).split(D, dim=2)  # (B, T, D) each
        k = k.view(B, T, nh, D // nh).transpose(1, 2).contiguous()  # (B, nh, T, hd), laid out once for
        v = v.view(B, T, nh, D // nh).transpose(1, 2).contiguous()  # every block and every LLM
        return PromptSide(pooled=summary, k=k, v=v, mask=mask[:, None, None, :])

    def score(
        self,
        prompt: PromptSide,
        model_idx: torch.Tensor,
        source_idx: torch.Tensor,
        labels: torch.Tensor | None = None,
        label_weight: torch.Tensor | None = None,
        pair_loss: float = 0.0,
    ) -> tuple[ScorerOutput, torch.Tensor | None]:
        """The LLMs' share: model_idx (B, Q) long; source_idx (B,) long head per prompt; labels (B, Q) in
        0..1; label_weight (B, Q), 0 where absent; pair_loss the weight of the gap term (see ``gap_loss``).
        Returns the scores and, with labels, the loss."""
        x = self.represent(prompt, model_idx)
        return self.read_heads(x, model_idx, source_idx, labels, label_weight, pair_loss)

    def represent(self, prompt: PromptSide, model_idx: torch.Tensor) -> torch.Tensor:
        """Each LLM's view of the prompt: (B, Q, D) from its latent reading the prompt's keys and values."""
        B = prompt.pooled.shape[0]
        assert model_idx.shape[0] == B, "one row of models per prompt"
        x = self.latent(model_idx) + prompt.pooled.unsqueeze(1)  # (B, Q, D)
        for block in self.blocks:
            x = block(x, prompt.k, prompt.v, prompt.mask)  # (B, Q, D)
        return self.ln_f(x)  # (B, Q, D)

    def read_heads(
        self,
        x: torch.Tensor,
        model_idx: torch.Tensor,
        source_idx: torch.Tensor,
        labels: torch.Tensor | None = None,
        label_weight: torch.Tensor | None = None,
        pair_loss: float = 0.0,
    ) -> tuple[ScorerOutput, torch.Tensor | None]:
        """Scores (and the loss) from the representations x (B, Q, D) on each prompt's source head."""
        assert source_idx.shape == (x.shape[0],), "one source per prompt"
        w = self.head_w[source_idx]  # (B, 2, D)
        out = torch.einsum("bqd,bkd->bqk", x, w) + self.head_b[source_idx].unsqueeze(1)  # (B, Q, 2)
        prior = torch.gather(self.prior[source_idx], 1, model_idx)  # (B, Q)
        logits = out[..., 0] + prior  # (B, Q)
        std = F.softplus(out[..., 1]) + 1e-3  # (B, Q)
        scores = torch.sigmoid(logits)
        result = ScorerOutput(scores=scores, std=std, logits=logits)
        if labels is None:
            return result, None
        assert labels.shape == logits.shape, f"labels {tuple(labels.shape)} vs logits {tuple(logits.shape)}"
        weight = torch.ones_like(labels) if label_weight is None else label_weight
        bce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")  # (B, Q)
        resid = labels - scores.detach()  # the std learns the size of the mean's errors
        nll = torch.log(std) + 0.5 * (resid / std) ** 2  # (B, Q)
        loss = ((bce + 0.1 * nll) * weight).sum() / weight.sum().clamp(min=1e-8)
        if pair_loss > 0.0:
            loss = loss + pair_loss * gap_loss(scores, labels, weight)
        return result, loss

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
        """states (B, T, C); mask (B, T) bool; model_idx (B, Q); source_idx (B,); see ``score``."""
        prompt = self.encode_prompt(states, mask)
        return self.score(prompt, model_idx, source_idx, labels, label_weight, pair_loss)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
