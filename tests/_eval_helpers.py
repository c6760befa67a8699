"""Helpers shared by the evaluation tests."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np


def words_embedder(texts: Sequence[str]) -> np.ndarray:
    """A small real embedding: hashed bag of words, L2-normalised (no model needed)."""
    out = np.zeros((len(texts), 64), dtype=np.float32)
    for i, text in enumerate(texts):
        for word in text.lower().split():
            out[i, int(hashlib.md5(word.encode()).hexdigest(), 16) % 64] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-9)
