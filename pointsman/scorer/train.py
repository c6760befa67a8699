"""Training the scorer: a plain loop over cached prompt states.

The encoder is frozen, so each distinct prompt is encoded once into the states cache and every epoch only runs
the small read-out (``pointsman.scorer.model``). The loop is seeded, keeps a validation split (by prompt text),
stops early when validation loss stops improving, writes ``last/`` (with the optimizer, for ``--resume``) and
``best/`` checkpoints, and runs unchanged under ``torchrun`` (DistributedDataParallel, ``gloo`` on CPU, ``nccl``
on GPUs): each process takes its share of every batch's prompts and rank 0 writes the checkpoints.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from pointsman.data import RoutingRecord, models_in
from pointsman.errors import ConfigError, DataError
from pointsman.scorer.checkpoint import load_model, load_train_state, save_model, save_train_state
from pointsman.scorer.dataset import Example, build_examples, select_records, split_by_prompt
from pointsman.scorer.encoder import DEFAULT_ENCODER, LoadedEncoder, load_encoder
from pointsman.scorer.model import LatentScorer, ModelConfig
from pointsman.scorer.states import PromptStates, StatesCache

__all__ = ["Batch", "TrainConfig", "TrainResult", "collate", "evaluate", "get_lr", "train"]

DEFAULT_SOURCE = "arena-bench-v1"


class TrainConfig(BaseModel):
    """The training recipe. A ``--config`` JSON file holds any of these fields; unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    encoder: str = DEFAULT_ENCODER
    max_tokens: int = Field(256, ge=8, le=512)
    d_model: int = Field(256, ge=8)
    n_layer: int = Field(2, ge=1)
    n_head: int = Field(4, ge=1)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    token_stride: int = Field(1, ge=1)
    length_feature: bool = False  # give the read-out the prompt's log token count (see ModelConfig)
    default_source: str = DEFAULT_SOURCE
    head_of: dict[str, str] = Field(default_factory=lambda: {"mtbench": DEFAULT_SOURCE})
    exclude_sources: list[str] = Field(default_factory=list)
    max_per_task: dict[str, int] = Field(default_factory=lambda: {"routellm-mmlu": 3000})
    source_weight: dict[str, float] = Field(default_factory=dict)
    min_labels_per_model: int = Field(20, ge=1)
    val_fraction: float = Field(0.1, gt=0.0, lt=0.5)
    batch_size: int = Field(64, ge=1)
    max_models_per_prompt: int | None = Field(
        None, ge=1
    )  # sample this many labelled models per prompt and step
    lr: float = Field(2e-3, gt=0.0)
    min_lr: float = Field(1e-4, ge=0.0)
    warmup_steps: int = Field(100, ge=0)
    max_steps: int = Field(4000, ge=1)
    weight_decay: float = Field(0.01, ge=0.0)
    # weight of the gap term: squared error of the quality differences between LLMs on the same prompt
    pair_loss: float = Field(0.0, ge=0.0)
    eval_interval: int = Field(200, ge=1)
    patience: int = Field(5, ge=1)
    grad_clip: float = Field(1.0, gt=0.0)
    # train this many members with seeds seed, seed+1, ... and write them as one ensemble checkpoint
    # (pointsman.scorer.ensemble); each member also subsamples the capped tasks with its own seed
    members: int = Field(1, ge=1)
    # torch threads. 1 by default: on a shared 2-core machine two threads ran a step 5x slower (0.25 s vs
    # 0.05 s) from oversubscription; raise it on an idle or bigger machine.
    threads: int = Field(1, ge=1)

    @staticmethod
    def quick(**overrides: Any) -> TrainConfig:
        """A recipe that trains in under two minutes on 2 shared CPU cores (for tests and smoke runs). Encoding
        the prompts with MiniLM is most of the time (142 of 167 s with 3,902 prompts × 64 tokens), so every
        source is capped (~1,700 distinct prompts; AlpacaEval 1 and 2 share theirs) at 48 tokens."""
        base: dict[str, Any] = dict(
            max_tokens=48,
            d_model=64,
            n_layer=1,
            n_head=2,
            max_per_task={
                "alpacaeval1": 250,
                "alpacaeval2": 250,
                "qlora-oa": 200,
                "llmrouter": 300,
                "routerbench": 200,
                "routellm-mmlu": 150,
                "routellm-gsm8k": 100,
            },
            batch_size=32,
            lr=3e-3,
            warmup_steps=10,
            max_steps=100,
            eval_interval=50,
            patience=2,
        )
        base.update(overrides)
        return TrainConfig(**base)


@dataclass
class Batch:
    states: torch.Tensor  # (B, T, C) float32
    mask: torch.Tensor  # (B, T) bool
    model_idx: torch.Tensor  # (B, Q) long
    source_idx: torch.Tensor  # (B,) long
    labels: torch.Tensor  # (B, Q) float32
    weight: torch.Tensor  # (B, Q) float32, 0 on padding


@dataclass
class TrainResult:
    out_dir: Path
    best_val_loss: float
    steps: int
    seconds: float
    history: list[dict[str, float]]


def collate(examples: Sequence[Example], states: PromptStates, prompt_row: dict[str, int]) -> Batch:
    """Pad a list of examples into one batch; prompt i's states come from ``states.get(prompt_row[prompt])``."""
    B = len(examples)
    rows = [states.get(prompt_row[e.prompt]) for e in examples]
    T = max(r.shape[0] for r in rows)
    Q = max(len(e.models) for e in examples)
    C = rows[0].shape[1]
    out_states = torch.zeros(B, T, C)
    mask = torch.zeros(B, T, dtype=torch.bool)
    model_idx = torch.zeros(B, Q, dtype=torch.long)
    labels = torch.zeros(B, Q)
    weight = torch.zeros(B, Q)
    for i, (e, r) in enumerate(zip(examples, rows, strict=True)):
        out_states[i, : r.shape[0]] = r.float()
        mask[i, : r.shape[0]] = True
        n = len(e.models)
        model_idx[i, :n] = torch.tensor(e.models)
        labels[i, :n] = torch.tensor(e.labels)
        weight[i, :n] = e.weight
    source_idx = torch.tensor([e.source for e in examples], dtype=torch.long)
    return Batch(out_states, mask, model_idx, source_idx, labels, weight)


def length_batches(
    examples: Sequence[Example], lengths: Sequence[int], batch_size: int, rng: random.Random
) -> list[list[Example]]:
    """Shuffle, then sort within windows of 50 batches by prompt length so padding stays small."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    batches: list[list[Example]] = []
    window = batch_size * 50
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(
            [examples[i] for i in chunk[j : j + batch_size]] for j in range(0, len(chunk), batch_size)
        )
    rng.shuffle(batches)
    return batches


def sample_models(example: Example, k: int | None, rng: random.Random) -> Example:
    """At most ``k`` of the example's labelled models, weighted up so the expected loss is unchanged."""
    n = len(example.models)
    if k is None or n <= k:
        return example
    keep = sorted(rng.sample(range(n), k))
    return Example(
        prompt=example.prompt,
        source=example.source,
        models=tuple(example.models[i] for i in keep),
        labels=tuple(example.labels[i] for i in keep),
        weight=example.weight * n / k,
    )


def get_lr(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay from ``lr`` to ``min_lr`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


@torch.no_grad()
def evaluate(
    model: LatentScorer,
    examples: Sequence[Example],
    states: PromptStates,
    prompt_row: dict[str, int],
    batch_size: int = 128,
    pair_loss: float = 0.0,
) -> dict[str, float]:
    """Weighted loss and mean absolute error of the mean prediction over ``examples``."""
    was_training = model.training
    model.eval()
    total_loss = total_w = total_abs = total_n = 0.0
    ordered = sorted(examples, key=lambda e: states.get(prompt_row[e.prompt]).shape[0])
    for start in range(0, len(ordered), batch_size):
        b = collate(ordered[start : start + batch_size], states, prompt_row)
        out, loss = model(b.states, b.mask, b.model_idx, b.source_idx, b.labels, b.weight, pair_loss)
        assert loss is not None
        w = float(b.weight.sum())
        total_loss += float(loss) * w
        total_w += w
        present = b.weight > 0
        total_abs += float((out.scores - b.labels).abs()[present].sum())
        total_n += float(present.sum())
    model.train(was_training)
    return {"loss": total_loss / max(total_w, 1e-12), "mae": total_abs / max(total_n, 1.0)}


def _dist_info() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def maybe_init_distributed() -> bool:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1); True when distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return True


def prepare_records(
    records: Sequence[RoutingRecord], cfg: TrainConfig, seed: int | None = None
) -> list[RoutingRecord]:
    """Drop excluded sources and test splits, subsample giant tasks (with ``seed``, default the recipe's)."""
    kept = [r for r in records if r.source not in cfg.exclude_sources and r.split == "train"]
    return select_records(kept, max_per_task=cfg.max_per_task, seed=cfg.seed if seed is None else seed)


def choose_models(records: Sequence[RoutingRecord], minimum: int) -> list[str]:
    counts: dict[str, int] = {}
    for r in records:
        for m in r.scores:
            counts[m] = counts.get(m, 0) + 1
    return [m for m in models_in(records) if counts[m] >= minimum]


def cached_states(
    prompts: Sequence[str],
    cache_dir: str | os.PathLike[str] | None,
    cfg_encoder: str,
    max_tokens: int,
    encoder: LoadedEncoder | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[PromptStates, dict[str, int]]:
    """States for the distinct ``prompts`` (from the cache, encoding what is missing) and each one's row."""
    from pointsman.scorer.states import encode_states

    distinct = list(dict.fromkeys(prompts))
    row = {p: i for i, p in enumerate(distinct)}
    if cache_dir is None:
        enc = encoder or load_encoder(cfg_encoder)
        return PromptStates.pack(encode_states(enc, distinct, max_tokens=max_tokens, progress=progress)), row
    cache = StatesCache(cache_dir, cfg_encoder, max_tokens)
    rank, world = _dist_info()
    if cache.missing(distinct) and rank == 0:
        cache.fill(encoder or load_encoder(cfg_encoder), distinct, progress=progress)
    if world > 1:
        torch.distributed.barrier()
        cache = StatesCache(cache_dir, cfg_encoder, max_tokens)
    return cache.gather(distinct), row


def train(
    records: Sequence[RoutingRecord],
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    encoder: LoadedEncoder | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a scorer on ``records`` and write ``out_dir/best`` and ``out_dir/last``.

    With ``cfg.members`` K > 1, member k is trained into ``out_dir/member-k`` (its own ``best`` and ``last``,
    so ``resume`` continues the member that was interrupted and skips the finished ones), then the K best
    checkpoints are written together to ``out_dir/best`` as one ensemble. The members differ only in their
    initialisation and the order they see the data: all of them train on the same rows (the subsample of capped
    tasks and the validation split both follow ``cfg.seed``), so the prompts held out for validation are held
    out from every member."""
    if cfg.members == 1:
        return _train_one(records, cfg, out_dir, cache_dir, resume, encoder, show_progress, log)
    from pointsman.scorer.ensemble import ScorerEnsemble

    say = log or (lambda _msg: None)
    out = Path(out_dir)
    t0 = time.perf_counter()
    results: list[TrainResult] = []
    for k in range(cfg.members):
        say(f"ensemble member {k + 1} of {cfg.members} (seed {cfg.seed + k})")
        member_cfg = cfg.model_copy(update={"members": 1, "seed": cfg.seed + k})
        results.append(
            _train_one(
                records,
                member_cfg,
                out / f"member-{k}",
                cache_dir,
                resume,
                encoder,
                show_progress,
                log,
                data_seed=cfg.seed,
            )
        )
    rank, _ = _dist_info()
    if rank == 0:
        loaded = [load_model(r.out_dir / "best") for r in results]
        singles = [m for m, _ in loaded if isinstance(m, LatentScorer)]
        assert len(singles) == len(loaded), "each member checkpoint holds one scorer"
        if any(m.config != singles[0].config for m in singles):
            raise DataError(
                "the ensemble's members learned different model lists (a capped task's subsample left a model "
                "under min_labels_per_model in one of them); lower min_labels_per_model or train one member"
            )
        meta = {"members": [{"seed": cfg.seed + k, **m} for k, (_, m) in enumerate(loaded)]}
        save_model(ScorerEnsemble(singles), out / "best", meta=meta)
    history = [h for r in results for h in r.history]
    best = sum(r.best_val_loss for r in results) / len(results)
    steps = sum(r.steps for r in results)
    return TrainResult(out, best, steps, time.perf_counter() - t0, history)


def _train_one(
    records: Sequence[RoutingRecord],
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None,
    resume: bool,
    encoder: LoadedEncoder | None,
    show_progress: bool,
    log: Callable[[str], None] | None,
    data_seed: int | None = None,
) -> TrainResult:
    """One scorer. ``data_seed`` (default ``cfg.seed``) picks the subsample and the validation split; ``cfg.seed``
    the initialisation and the batches."""
    data_seed = cfg.seed if data_seed is None else data_seed
    torch.set_num_threads(cfg.threads)
    distributed = maybe_init_distributed()
    rank, world = _dist_info()
    say = log if (log is not None and rank == 0) else (lambda _msg: None)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    out = Path(out_dir)

    data = prepare_records(records, cfg, data_seed)
    if not data:
        raise DataError("no training rows left after dropping test splits and excluded sources")
    sources = sorted({r.source for r in data} - set(cfg.head_of))
    sources += sorted(s for s in {r.source for r in data} if s in cfg.head_of and s not in sources)
    if cfg.default_source not in sources:
        raise ConfigError(
            f"the default source {cfg.default_source!r} has no training rows (sources: {', '.join(sources)}); "
            "set default_source in the config to one of them"
        )
    head_of = {s: t for s, t in cfg.head_of.items() if s in sources and t in sources}
    models = choose_models(data, cfg.min_labels_per_model)
    if not models:
        raise DataError(f"no model has {cfg.min_labels_per_model} labels; lower min_labels_per_model")
    mcfg = ModelConfig(
        models=models,
        sources=sources,
        default_source=cfg.default_source,
        encoder=cfg.encoder,
        max_tokens=cfg.max_tokens,
        n_embd=0,
        d_model=cfg.d_model,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        dropout=cfg.dropout,
        token_stride=cfg.token_stride,
        length_feature=cfg.length_feature,
        head_of=head_of,
    )

    train_rows, val_rows = split_by_prompt(data, val_fraction=cfg.val_fraction, seed=data_seed)
    train_ex = build_examples(train_rows, models, sources, head_of=head_of, source_weight=cfg.source_weight)
    val_ex = build_examples(val_rows, models, sources, head_of=head_of, source_weight=cfg.source_weight)
    if not train_ex or not val_ex:
        raise DataError("too few prompts for a train/validation split; give more data")
    # which prompts were held out, as a digest: equal digests mean the same validation prompts
    val_digest = hashlib.sha256("\n".join(sorted({e.prompt for e in val_ex})).encode()).hexdigest()[:16]
    say(
        f"{len(train_ex)} training and {len(val_ex)} validation prompts, {len(models)} models, sources {sources}"
    )

    t_cache = time.perf_counter()
    states, prompt_row = cached_states(
        [e.prompt for e in train_ex + val_ex], cache_dir, cfg.encoder, cfg.max_tokens, encoder
    )
    say(f"prompt states ready in {time.perf_counter() - t_cache:.1f}s ({states.flat.shape[0]} tokens)")
    mcfg.n_embd = int(states.flat.shape[1])

    model = LatentScorer(mcfg)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
    )
    step, best, bad_evals = 0, float("inf"), 0
    history: list[dict[str, float]] = []
    if resume:
        state = load_train_state(out / "last")
        if state is not None:
            loaded, _ = load_model(out / "last")
            if loaded.config != mcfg:
                raise ConfigError(
                    f"{out / 'last'} was trained with another config or data; resume needs the same ones, "
                    "or drop --resume to start over"
                )
            model.load_state_dict(loaded.state_dict())
            optimizer.load_state_dict(state["optimizer"])
            step, best, bad_evals = state["step"], state["best"], state["bad_evals"]
            history = state["history"]
            rng.setstate(state["rng"])
            torch.set_rng_state(state["torch_rng"])
            say(f"resumed at step {step} (best validation loss {best:.4f})")
    ddp_model: torch.nn.Module = model
    if distributed:
        ddp_model = torch.nn.parallel.DistributedDataParallel(model)
    lengths = [states.get(prompt_row[e.prompt]).shape[0] for e in train_ex]

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("step {task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        disable=not show_progress or rank != 0,
    )
    t0 = time.perf_counter()
    model.train()
    batches: list[list[Example]] = []
    with progress:
        bar = progress.add_task("train", total=cfg.max_steps, completed=step, info="")
        while step < cfg.max_steps and bad_evals < cfg.patience:
            if not batches:
                batches = length_batches(train_ex, lengths, cfg.batch_size * world, rng)
            group = batches.pop()
            mine = [sample_models(e, cfg.max_models_per_prompt, rng) for e in group[rank::world] or group[:1]]
            b = collate(mine, states, prompt_row)
            lr = get_lr(step, cfg)
            for g in optimizer.param_groups:
                g["lr"] = lr
            _, loss = ddp_model(
                b.states, b.mask, b.model_idx, b.source_idx, b.labels, b.weight, cfg.pair_loss
            )
            assert loss is not None
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            step += 1
            progress.update(bar, completed=step, info=f"loss {loss.item():.4f} lr {lr:.2e}")
            if step % cfg.eval_interval == 0 or step == cfg.max_steps:
                metrics = evaluate(model, val_ex, states, prompt_row, pair_loss=cfg.pair_loss)
                history.append({"step": float(step), "val_loss": metrics["loss"], "val_mae": metrics["mae"]})
                improved = metrics["loss"] < best - 1e-5
                if improved:
                    best, bad_evals = metrics["loss"], 0
                else:
                    bad_evals += 1
                say(
                    f"step {step}: val loss {metrics['loss']:.4f} mae {metrics['mae']:.4f} "
                    f"({time.perf_counter() - t0:.0f}s)"
                )
                if rank == 0:
                    meta = {
                        "step": step,
                        "val_loss": metrics["loss"],
                        "val_mae": metrics["mae"],
                        "val_prompts": val_digest,
                    }
                    if improved:
                        save_model(model, out / "best", meta=meta)
                    save_model(model, out / "last", meta=meta)
                    save_train_state(
                        out / "last",
                        {
                            "optimizer": optimizer.state_dict(),
                            "step": step,
                            "best": best,
                            "bad_evals": bad_evals,
                            "history": history,
                            "rng": rng.getstate(),
                            "torch_rng": torch.get_rng_state(),
                            "config": cfg.model_dump(),
                        },
                    )
    if rank == 0 and not (out / "best").exists():
        save_model(model, out / "best", meta={"step": step})
    if distributed:
        torch.distributed.barrier()
    return TrainResult(out, best, step, time.perf_counter() - t0, history)
