"""Prompt embeddings for the embedding baselines, cached on disk.

Embedding tens of thousands of prompts with MiniLM on a small CPU takes minutes, and every fold of every
evaluation needs the same vectors, so each one is computed once and kept in a SQLite file under
``<data_dir>/cache/embeddings.sqlite3`` (``data_dir`` from ``Settings``, ``POINTSMAN_DATA_DIR``). The key is
the SHA-256 of (encoder name, token limit, text): another encoder or truncation never reads a stale vector.

Prompts are truncated at ``max_tokens`` (256) tokens and embedded in batches of similar length, so padding
wastes little time.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pointsman.scorer.encoder import DEFAULT_ENCODER, LoadedEncoder, embed_texts, load_encoder

__all__ = ["EmbeddingCache", "default_embedder"]


class EmbeddingCache:
    """``embed(texts) -> (N, H)`` float32 L2-normalised vectors, computed once per (encoder, limit, text)."""

    def __init__(
        self,
        directory: str | Path,
        *,
        encoder: str = DEFAULT_ENCODER,
        max_tokens: int = 256,
        batch_size: int = 64,
    ) -> None:
        self.directory = Path(directory)
        self.encoder_name = encoder
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self._encoder: LoadedEncoder | None = None
        self._memory: dict[str, np.ndarray] = {}

    @property
    def path(self) -> Path:
        return self.directory / "embeddings.sqlite3"

    def key(self, text: str) -> str:
        raw = f"{self.encoder_name}\x00{self.max_tokens}\x00{text}".encode()
        return hashlib.sha256(raw).hexdigest()

    def _connect(self) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=60)
        conn.execute("CREATE TABLE IF NOT EXISTS embedding (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        return conn

    def _load(self, keys: list[str]) -> None:
        wanted = [k for k in dict.fromkeys(keys) if k not in self._memory]
        if not wanted:
            return
        conn = self._connect()
        try:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in conn.execute(
                    f"SELECT key, vector FROM embedding WHERE key IN ({marks})", chunk
                ):
                    self._memory[key] = np.frombuffer(blob, dtype=np.float32)
        finally:
            conn.close()

    def _compute(self, texts: list[str], keys: list[str], progress: Any | None) -> None:
        if self._encoder is None:
            self._encoder = load_encoder(self.encoder_name)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths share a batch
        task = None
        if progress is not None:
            task = progress.add_task(f"embedding {len(texts)} prompts", total=len(texts))
        conn = self._connect()
        try:
            step = self.batch_size * 4
            for start in range(0, len(order), step):
                idx = order[start : start + step]
                vectors = embed_texts(
                    self._encoder,
                    [texts[i] for i in idx],
                    max_tokens=self.max_tokens,
                    batch_size=self.batch_size,
                )
                rows = [(keys[i], vectors[j].astype(np.float32).tobytes()) for j, i in enumerate(idx)]
                conn.executemany("INSERT OR REPLACE INTO embedding (key, vector) VALUES (?, ?)", rows)
                conn.commit()
                for (key, _), vector in zip(rows, vectors, strict=True):
                    self._memory[key] = vector.astype(np.float32)
                if progress is not None and task is not None:
                    progress.advance(task, len(idx))
        finally:
            conn.close()

    def embed(self, texts: Sequence[str], *, progress: Any | None = None) -> np.ndarray:
        """(N, H) embeddings of ``texts``, computing and storing only the ones not cached yet."""
        texts = list(texts)
        keys = [self.key(t) for t in texts]
        self._load(keys)
        missing: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key not in self._memory:
                missing.setdefault(key, text)
        if missing:
            self._compute(list(missing.values()), list(missing), progress)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys])

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed(texts)


@lru_cache(maxsize=4)
def _shared(directory: str) -> EmbeddingCache:
    return EmbeddingCache(directory)


def default_embedder(directory: str | Path | None = None) -> EmbeddingCache:
    """The MiniLM cache shared in this process for ``directory`` (default ``Settings().data_dir / "cache"``)."""
    if directory is None:
        from pointsman.settings import Settings

        directory = Settings().data_dir / "cache"
    return _shared(str(directory))
