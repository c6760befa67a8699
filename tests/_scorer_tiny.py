"""Tiny random encoders and synthetic routing records for the scorer tests (seconds, not minutes)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pointsman.data import RoutingRecord
from pointsman.scorer.encoder import LoadedEncoder, load_encoder, resolve_encoder_path


@lru_cache(maxsize=1)
def tiny_encoder_dir(root: str | None = None) -> str:
    """A 1-layer, 32-wide BERT with MiniLM's tokenizer, saved where ``load_encoder(path)`` can load it.
    Built once per machine under the temp directory (it is deterministic), so tests stay fast."""
    import os
    import shutil
    import tempfile

    out = Path(tempfile.gettempdir()) / "pointsman-tests" / "tiny-encoder-v1"
    if (out / "config.json").exists() and (out / "tokenizer.json").exists():
        return str(out)
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    staging = Path(tempfile.mkdtemp(prefix="tiny-encoder-"))
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_path("all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, out)
    except OSError:  # another test process won the race
        shutil.rmtree(staging, ignore_errors=True)
    return str(out)


@lru_cache(maxsize=1)
def _tiny() -> LoadedEncoder:
    return load_encoder(tiny_encoder_dir())


def tiny_encoder(root: str | None = None) -> LoadedEncoder:
    """The tiny encoder (loaded once per test process; ``root`` is ignored)."""
    return _tiny()


WORDS = ["apple", "river", "castle", "engine", "violin", "desert", "planet", "garden", "silver", "winter"]


def synthetic_records(n: int, *, source: str = "synthetic", seed: int = 0) -> list[RoutingRecord]:
    """Prompts about code or poems; model "coder" is good at code, "poet" at poems, "avg" at neither."""
    import random

    rng = random.Random(seed)
    out = []
    for i in range(n):
        topic = "code" if i % 2 == 0 else "poem"
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 12)))
        prompt = (
            f"Write a python function about {words}" if topic == "code" else f"Write a poem about {words}"
        )
        scores = {
            "coder": 0.9 if topic == "code" else 0.2,
            "poet": 0.2 if topic == "code" else 0.9,
            "avg": 0.5,
        }
        out.append(RoutingRecord(f"{source}/{i}", source, topic, "train", prompt, "synthetic", scores))
    return out
