"""Cheap adaptation of a trained scorer: new LLMs, a new label source, a user's own labelled prompts.

Nothing below the read-out is touched. Adapting to a source trains only that source's head row and its per-LLM
prior offsets (``head="offsets"``: only the offsets and the head's bias; optionally also the LLM latents, held
near their trained values by an L2 anchor, and a gap term on the LLMs' differences); adding an LLM
trains only its latent and its prior offset. Both run full-batch on the cached prompt states, so ~100 prompts
adapt in seconds on a CPU. An ensemble is adapted member by member, with the same options.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from pointsman.data import RoutingRecord
from pointsman.errors import DataError
from pointsman.scorer.dataset import build_examples
from pointsman.scorer.ensemble import ReadOut, ScorerEnsemble, members_of
from pointsman.scorer.model import LatentScorer, ModelConfig, PromptSide
from pointsman.scorer.states import PromptStates
from pointsman.scorer.train import collate

__all__ = ["AdaptOptions", "adapt", "adapt_checkpoint", "extend"]


@dataclass
class AdaptOptions:
    steps: int = 300
    lr: float = 0.02
    train_head: bool = True  # the target source's head and prior offsets
    # "row": the head's whole read-out row moves; "offsets": only its bias and the per-LLM prior offsets move,
    # so the prompt-dependent part stays the starting head's (few parameters for a hundred prompts)
    head: str = "offsets"
    train_latents: str = "new"  # "none", "new" (LLMs the base never saw), or "all" (anchored)
    anchor: float = 1.0  # L2 pull of adapted latents towards their starting values
    head_anchor: float = 0.0  # L2 pull of the adapted head row towards its starting values
    pair_loss: float = 0.0  # weight of the gap term (``pointsman.scorer.model.gap_loss``)
    seed: int = 0


def extend(model: ReadOut, models: Sequence[str], source: str, init_source: str | None = None) -> ReadOut:
    """A copy of ``model`` that also knows ``models`` and ``source``. A new LLM's latent starts at the mean latent
    (its prior offsets at the mean offset); a new source's head starts as a copy of ``init_source``'s (default:
    the model's default source). The new source becomes the default one."""
    if isinstance(model, ScorerEnsemble):
        return ScorerEnsemble([_extend_one(m, models, source, init_source) for m in members_of(model)])
    return _extend_one(model, models, source, init_source)


def _extend_one(
    model: LatentScorer, models: Sequence[str], source: str, init_source: str | None
) -> LatentScorer:
    cfg = model.config
    new_models = [m for m in models if m not in cfg.models]
    new_sources = [] if source in cfg.sources else [source]
    init = cfg.head_of.get(init_source or cfg.default_source, init_source or cfg.default_source)
    ncfg = ModelConfig(
        **{**cfg.to_dict(), "models": cfg.models + new_models, "sources": cfg.sources + new_sources}
    )
    ncfg.default_source = source
    ncfg.head_of = {k: v for k, v in cfg.head_of.items() if k != source}
    out = LatentScorer(ncfg)
    state = copy.deepcopy(model.state_dict())
    M0, S0 = len(cfg.models), len(cfg.sources)
    with torch.no_grad():
        lat = state["latent.weight"]
        state["latent.weight"] = torch.cat([lat, lat.mean(0, keepdim=True).expand(len(new_models), -1)])
        prior = state["prior"]
        prior = torch.cat([prior, prior.mean(1, keepdim=True).expand(S0, len(new_models))], dim=1)
        if new_sources:
            src = cfg.sources.index(init)
            state["head_w"] = torch.cat([state["head_w"], state["head_w"][src : src + 1]])
            state["head_b"] = torch.cat([state["head_b"], state["head_b"][src : src + 1]])
            prior = torch.cat([prior, prior[src : src + 1]])
        state["prior"] = prior
    out.load_state_dict(state)
    assert out.latent.weight.shape[0] == M0 + len(new_models)
    out.eval()
    return out


def adapt(
    model: ReadOut,
    records: Sequence[RoutingRecord],
    states: PromptStates,
    prompt_row: dict[str, int],
    *,
    source: str,
    new_models: Sequence[str] = (),
    options: AdaptOptions | None = None,
) -> ReadOut:
    """Fit ``model`` (already ``extend``-ed to know the records' models and ``source``) to ``records``, whose
    labels are all read on ``source``'s scale; ``new_models`` are the LLMs whose latents
    ``train_latents="new"`` fits. Returns a new model; ``model`` is unchanged. Each member of an ensemble is
    adapted on its own (member k with seed ``options.seed + k``)."""
    opts = options or AdaptOptions()
    if isinstance(model, ScorerEnsemble):
        return ScorerEnsemble(
            [
                _adapt_one(
                    m, records, states, prompt_row, source, new_models, replace(opts, seed=opts.seed + k)
                )
                for k, m in enumerate(members_of(model))
            ]
        )
    return _adapt_one(model, records, states, prompt_row, source, new_models, opts)


def _adapt_one(
    model: LatentScorer,
    records: Sequence[RoutingRecord],
    states: PromptStates,
    prompt_row: dict[str, int],
    source: str,
    new_models: Sequence[str],
    opts: AdaptOptions,
) -> LatentScorer:
    torch.manual_seed(opts.seed)
    cfg = model.config
    relabelled = [RoutingRecord(r.id, source, r.task, r.split, r.prompt, r.label, r.scores) for r in records]
    examples = build_examples(relabelled, cfg.models, cfg.sources, head_of=cfg.head_of)
    if not examples:
        raise DataError(f"no labelled prompts for the models {cfg.models[:10]}...; nothing to adapt on")
    out = copy.deepcopy(model)
    out.eval()  # no dropout: few examples, full batch
    for p in out.parameters():
        p.requires_grad_(False)
    s = cfg.sources.index(cfg.head_of.get(source, source))
    labelled = sorted({m for e in examples for m in e.models})
    trained: list[torch.Tensor] = []
    if opts.head not in ("row", "offsets"):
        raise DataError(f"unknown head adaptation {opts.head!r}; use 'row' or 'offsets'")
    if opts.train_head:
        for p in (out.head_b, out.prior) if opts.head == "offsets" else (out.head_w, out.head_b, out.prior):
            p.requires_grad_(True)
            trained.append(p)
    latent_rows: list[int] = []
    if opts.train_latents == "all":
        latent_rows = labelled
    elif opts.train_latents == "new":
        fresh = set(new_models)
        latent_rows = [m for m in labelled if cfg.models[m] in fresh]
    if latent_rows or not opts.train_head:
        out.latent.weight.requires_grad_(True)
        out.prior.requires_grad_(True)
        trained += [out.latent.weight, out.prior]
    if not trained:
        return out
    start_latent = out.latent.weight.detach().clone()
    start_head = out.head_w.detach()[s].clone()  # (2, D)
    row_mask = torch.zeros(len(cfg.sources), 1)
    row_mask[s] = 1.0
    latent_mask = torch.zeros(len(cfg.models), 1)
    latent_mask[latent_rows] = 1.0
    batch = collate(examples, states, prompt_row)
    with torch.no_grad():  # the prompt side is frozen, and so is every representation but the new latents'
        prompt = out.encode_prompt(batch.states, batch.mask)
        fixed = out.represent(prompt, batch.model_idx)  # (B, Q, D)
    moving = latent_mask[batch.model_idx, 0] > 0  # (B, Q) where the latent is trained
    rows, cols = moving.nonzero(as_tuple=True)
    sub_prompt = PromptSide(prompt.pooled[rows], prompt.k[rows], prompt.v[rows], prompt.mask[rows])
    sub_models = batch.model_idx[rows, cols].unsqueeze(1)  # (K, 1)
    optimizer = torch.optim.Adam(list(dict.fromkeys(trained)), lr=opts.lr)
    for _ in range(opts.steps):
        x = fixed
        if len(rows):
            x = fixed.clone()
            x[rows, cols] = out.represent(sub_prompt, sub_models)[:, 0]
        _, loss = out.read_heads(
            x, batch.model_idx, batch.source_idx, batch.labels, batch.weight, opts.pair_loss
        )
        assert loss is not None
        drift = ((out.latent.weight - start_latent) ** 2 * latent_mask).sum() / max(1, len(latent_rows))
        head_drift = ((out.head_w[s] - start_head) ** 2).sum()
        total = loss + opts.anchor * 1e-2 * drift + opts.head_anchor * head_drift
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        with torch.no_grad():  # only the target source's rows and the chosen latents move
            for p in (out.head_w, out.head_b):
                if p.grad is not None:
                    p.grad.mul_(row_mask.view(-1, *([1] * (p.dim() - 1))))
            if out.prior.grad is not None:
                pm = row_mask.expand_as(out.prior).clone()
                if not opts.train_head:
                    pm = pm * latent_mask.view(1, -1)
                out.prior.grad.mul_(pm)
            if out.latent.weight.grad is not None:
                out.latent.weight.grad.mul_(latent_mask)
        optimizer.step()
    for p in out.parameters():
        p.requires_grad_(False)
    out.eval()
    return out


def adapt_checkpoint(
    checkpoint: str | os.PathLike[str],
    records: Sequence[RoutingRecord],
    out_dir: str | os.PathLike[str],
    *,
    source: str | None = None,
    latents_only: bool = False,
    options: AdaptOptions | None = None,
) -> Path:
    """Adapt a checkpoint to ``records`` (all read on ``source``'s scale; default: the records' first source)
    and write the result to ``out_dir``. ``latents_only`` fits only the latents of LLMs the checkpoint does
    not know (add a new LLM from a few labelled prompts)."""
    from pointsman.scorer.checkpoint import load_model, save_model
    from pointsman.scorer.neural import NeuralScorer

    if not records:
        raise DataError("no records to adapt on; give a routing-data file with labelled prompts")
    base, meta = load_model(checkpoint)
    target = source or records[0].source
    models = sorted({m for r in records for m in r.scores})
    new_models = [m for m in models if m not in base.config.models]
    if latents_only and not new_models:
        raise DataError(
            f"--latents-only fits new LLMs, but every model in the data is already known to {checkpoint}; "
            "drop --latents-only to adapt the head instead"
        )
    if latents_only and target not in base.config.sources and target not in base.config.head_of:
        target = base.config.default_source
    init = target if target in base.config.sources else None
    extended = extend(base, models, target, init_source=init)
    if latents_only:
        for member in members_of(extended):
            member.config.default_source = base.config.default_source
    scorer = NeuralScorer(extended, source=target)
    prompts = list(dict.fromkeys(r.prompt for r in records))
    states = scorer.prompt_states(prompts)
    opts = options or AdaptOptions()
    if latents_only:
        opts = AdaptOptions(**{**opts.__dict__, "train_head": False, "train_latents": "new"})
    adapted = adapt(
        extended,
        records,
        states,
        {p: i for i, p in enumerate(prompts)},
        source=target,
        new_models=new_models,
        options=opts,
    )
    info = {**meta, "adapted_on": target, "adapted_prompts": len(prompts), "new_models": new_models}
    return save_model(adapted, out_dir, meta=info)
