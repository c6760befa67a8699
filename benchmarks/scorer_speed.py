"""How fast is scoring one prompt for M candidate LLMs, next to one plain MiniLM forward pass?

Everything is measured side by side in the same process, interleaved, on the same prompt:

* ``plain``      one MiniLM forward pass over T tokens (the reference: what any embedding router pays);
* ``neural``     the shipped design: one MiniLM pass, then M latent queries read the top-layer states;
* ``hf plain`` / ``hf neural``  the same two with transformers' BertModel instead of the native encoder
                 (``pointsman.scorer.bert``), to compare the two implementations;
* ``read-out``   the read-out alone on already-computed states (the part ``neural`` adds to ``plain``);
* ``cross``      a full cross-encoder: an LLM latent token prepended at the input, all 6 layers re-run per LLM;
* ``late``       late conditioning: layers 1-5 once, the top layer re-run per LLM with the latent token in it;
* ``two-tower``  one pass, mean-pool, then a dot product with each LLM's vector.

Prints p50/p99 latency (ms) per (T, M) for each ``--threads`` choice, the ratios neural/plain and
hf neural/neural, and peak memory. Run:

    nice -n 10 .venv/bin/python benchmarks/scorer_speed.py [--threads 1,2] [--reps 30] [--checkpoint DIR] [--no-hf]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from collections.abc import Callable

import torch

from pointsman.scorer.bert import BertEncoder
from pointsman.scorer.encoder import DEFAULT_ENCODER, load_encoder
from pointsman.scorer.ensemble import ReadOut
from pointsman.scorer.model import LatentScorer, ModelConfig


def readout(checkpoint: str | None, n_models: int) -> ReadOut:
    if checkpoint:
        from pointsman.scorer.checkpoint import load_model

        return load_model(checkpoint)[0]
    try:
        from pointsman.scorer.checkpoint import load_model
        from pointsman.scorer.neural import packaged_checkpoint

        return load_model(packaged_checkpoint())[0]
    except Exception:  # no shipped checkpoint yet: time a fresh one of the default shape
        cfg = ModelConfig(
            models=[f"m{i}" for i in range(n_models)],
            sources=["s"],
            default_source="s",
            d_model=128,
            n_layer=2,
        )
        return LatentScorer(cfg).eval()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", default="1,2", help="torch.set_num_threads choices, comma-separated")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--tokens", default="64,256,512")
    parser.add_argument("--candidates", default="2,16,64")
    parser.add_argument("--alternatives", action="store_true", help="also time cross/late/two-tower")
    parser.add_argument("--no-hf", action="store_true", help="skip transformers' BertModel")
    args = parser.parse_args()

    enc = load_encoder(DEFAULT_ENCODER, backend="native")
    bert = enc.model
    assert isinstance(bert, BertEncoder)
    hf_bert = None if args.no_hf else load_encoder(DEFAULT_ENCODER, backend="transformers").model
    head = readout(args.checkpoint, 100)
    n_known = len(head.config.models)
    hidden = enc.hidden_size
    latents = torch.randn(max(64, n_known), hidden) * 0.02  # for the alternatives' latent tokens

    def ids_of(t: int) -> torch.Tensor:
        text = "Explain how a transformer language model routes prompts between candidate models. " * 80
        (raw,) = enc.tokenizer.encode([text])
        assert len(raw) >= t - 2, f"could not build a {t}-token prompt"
        return torch.tensor([[enc.tokenizer.cls_token_id, *raw[: t - 2], enc.tokenizer.sep_token_id]])

    @torch.inference_mode()
    def plain(ids: torch.Tensor, m: int) -> None:
        bert(input_ids=ids)

    @torch.inference_mode()
    def neural(ids: torch.Tensor, m: int) -> None:
        states = bert(input_ids=ids).last_hidden_state  # (1, T, C)
        idx = torch.arange(m).remainder(n_known).unsqueeze(0)  # (1, M)
        mask = torch.ones(1, states.shape[1], dtype=torch.bool)
        head(states, mask, idx, torch.zeros(1, dtype=torch.long))

    @torch.inference_mode()
    def hf_plain(ids: torch.Tensor, m: int) -> None:
        assert hf_bert is not None
        hf_bert(input_ids=ids)

    @torch.inference_mode()
    def hf_neural(ids: torch.Tensor, m: int) -> None:
        assert hf_bert is not None
        states = hf_bert(input_ids=ids).last_hidden_state  # (1, T, C)
        idx = torch.arange(m).remainder(n_known).unsqueeze(0)  # (1, M)
        mask = torch.ones(1, states.shape[1], dtype=torch.bool)
        head(states, mask, idx, torch.zeros(1, dtype=torch.long))

    cached: dict[int, torch.Tensor] = {}

    @torch.inference_mode()
    def readout_only(ids: torch.Tensor, m: int) -> None:
        if ids.shape[1] not in cached:
            cached[ids.shape[1]] = bert(input_ids=ids).last_hidden_state
        states = cached[ids.shape[1]]
        idx = torch.arange(m).remainder(n_known).unsqueeze(0)
        head(states, torch.ones(1, states.shape[1], dtype=torch.bool), idx, torch.zeros(1, dtype=torch.long))

    @torch.inference_mode()
    def cross(ids: torch.Tensor, m: int) -> None:
        emb = bert.embeddings(ids)  # (1, T, C)
        x = torch.cat([latents[:m].unsqueeze(1), emb.expand(m, -1, -1)], dim=1)  # (M, T+1, C)
        for block in bert.blocks:
            x = block(x)

    @torch.inference_mode()
    def late(ids: torch.Tensor, m: int) -> None:
        x = bert.embeddings(ids)  # (1, T, C)
        for block in bert.blocks[:-1]:
            x = block(x)
        y = torch.cat([latents[:m].unsqueeze(1), x.expand(m, -1, -1)], dim=1)  # (M, T+1, C)
        bert.blocks[-1](y)

    @torch.inference_mode()
    def two_tower(ids: torch.Tensor, m: int) -> None:
        pooled = bert(input_ids=ids).last_hidden_state.mean(1)  # (1, C)
        pooled @ latents[:m].T

    variants: dict[str, Callable[[torch.Tensor, int], None]] = {
        "plain": plain,
        "neural": neural,
        "read-out": readout_only,
    }
    if hf_bert is not None:
        variants |= {"hf plain": hf_plain, "hf neural": hf_neural}
    if args.alternatives:
        variants |= {"two-tower": two_tower, "late": late, "cross": cross}
    tokens = [int(t) for t in args.tokens.split(",")]
    cands = [int(m) for m in args.candidates.split(",")]
    thread_choices = [int(n) for n in args.threads.split(",")]
    print(f"threads={thread_choices} (interleaved) reps={args.reps} read-out params={head.num_params():,}")
    print(
        f"{'thr':>3} {'T':>4} {'M':>3} "
        + " ".join(f"{v + ' p50':>14} {'p99':>7}" for v in variants)
        + "  neural/plain"
        + ("  hf/native neural" if hf_bert is not None else "")
    )
    for t in tokens:
        ids = ids_of(t)
        for m in cands:
            times: dict[tuple[int, str], list[float]] = {(n, v): [] for n in thread_choices for v in variants}
            for n in thread_choices:  # warm-up
                torch.set_num_threads(n)
                for fn in variants.values():
                    fn(ids, m)
            for _ in range(args.reps):
                for n in thread_choices:  # threads and variants interleaved, so load changes hit all alike
                    torch.set_num_threads(n)
                    for name, fn in variants.items():
                        start = time.perf_counter()
                        fn(ids, m)
                        times[(n, name)].append((time.perf_counter() - start) * 1000)
            for n in thread_choices:
                p50 = {v: statistics.median(times[(n, v)]) for v in variants}
                cells = " ".join(f"{p50[v]:>14.1f} {percentile(times[(n, v)], 0.99):>7.1f}" for v in variants)
                hf_ratio = f"  {p50['hf neural'] / p50['neural']:16.2f}x" if hf_bert is not None else ""
                print(
                    f"{n:>3} {t:>4} {m:>3} {cells}  {p50['neural'] / p50['plain']:11.2f}x{hf_ratio}",
                    flush=True,
                )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    readout_mb = sum(p.numel() * p.element_size() for p in head.parameters()) / 2**20
    print(f"peak RSS {rss:.0f} MiB; read-out weights {readout_mb:.1f} MiB (float32)")


if __name__ == "__main__":
    main()
