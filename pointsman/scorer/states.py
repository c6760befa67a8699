"""The frozen encoder's top-layer states per prompt, computed once and cached on disk.

The scorer's trainable part only reads the prompt's final token states, so training never re-runs the encoder:
each distinct prompt is encoded once (batched by length, fp16, at most ``max_tokens`` tokens) and kept in
safetensors shards under a cache directory. Shards are written as they finish, so an interrupted caching run
resumes where it stopped.

Long prompts keep their head and their tail (the question of a long chat transcript is usually at its end);
``truncate_ids`` says exactly what is kept.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pointsman.errors import ScorerError

if TYPE_CHECKING:
    import torch

    from pointsman.scorer.encoder import LoadedEncoder

__all__ = ["PromptStates", "StatesCache", "encode_states", "prompt_key", "tokenize_prompts", "truncate_ids"]

_INDEX = "index.json"
_LOCK = ".lock"


def truncate_ids(ids: list[int], max_inner: int, head_fraction: float = 0.5) -> tuple[list[int], bool]:
    """Keep at most ``max_inner`` token ids: the first ``head_fraction`` of the budget and the rest from the
    end. Returns the ids and whether anything was cut."""
    if len(ids) <= max_inner:
        return ids, False
    head = int(max_inner * head_fraction)
    tail = max_inner - head
    return ids[:head] + (ids[len(ids) - tail :] if tail else []), True


def tokenize_prompts(
    encoder: LoadedEncoder, prompts: Sequence[str], max_tokens: int
) -> tuple[list[list[int]], list[bool]]:
    """Token ids with [CLS] ... [SEP], at most ``max_tokens`` long, and a flag per prompt saying it was cut.
    An empty prompt becomes [CLS] [SEP]."""
    tok = encoder.tokenizer
    assert max_tokens >= 4, "max_tokens must leave room for [CLS], [SEP] and some text"
    raw = tok.encode(list(prompts))
    cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
    out: list[list[int]] = []
    cut: list[bool] = []
    for ids in raw:
        kept, was_cut = truncate_ids(list(ids), max_tokens - 2)
        out.append([cls_id, *kept, sep_id])
        cut.append(was_cut)
    return out, cut


def encode_states(
    encoder: LoadedEncoder,
    prompts: Sequence[str],
    *,
    max_tokens: int = 256,
    tokens_per_batch: int = 8192,
    progress: Callable[[int], None] | None = None,
) -> list[torch.Tensor]:
    """The encoder's last hidden states per prompt, each (T_i, C) fp16 with T_i <= max_tokens.

    Prompts are sorted by length and packed into batches of about ``tokens_per_batch`` padded tokens, so
    little work is wasted on padding."""
    import torch

    ids, _ = tokenize_prompts(encoder, prompts, max_tokens)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[torch.Tensor | None] = [None] * len(ids)
    pad_id = encoder.tokenizer.pad_token_id
    start = 0
    with torch.inference_mode():
        while start < len(order):
            end = start + 1
            while end < len(order) and len(ids[order[end]]) * (end - start + 1) <= tokens_per_batch:
                end += 1
            batch = order[start:end]
            longest = max(len(ids[i]) for i in batch)
            input_ids = torch.full((len(batch), longest), pad_id, dtype=torch.long)  # (B, T)
            mask = torch.zeros((len(batch), longest), dtype=torch.long)  # (B, T)
            for row, i in enumerate(batch):
                input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                mask[row, : len(ids[i])] = 1
            hidden = encoder.model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (B, T, C)
            for row, i in enumerate(batch):
                out[i] = hidden[row, : len(ids[i])].to(torch.float16).clone()
            if progress is not None:
                progress(len(batch))
            start = end
    assert all(t is not None for t in out)
    return [t for t in out if t is not None]


def prompt_key(encoder_name: str, max_tokens: int, prompt: str) -> str:
    """A stable cache key for one prompt's states under one encoder and truncation."""
    digest = hashlib.sha256(f"{encoder_name}\x00{max_tokens}\x00{prompt}".encode()).hexdigest()
    return digest[:24]


@dataclass
class PromptStates:
    """Many prompts' states packed into one tensor: prompt i is ``flat[offsets[i]:offsets[i+1]]``."""

    flat: torch.Tensor  # (sum T_i, C) fp16
    offsets: torch.Tensor  # (N + 1,) long

    def __len__(self) -> int:
        return int(self.offsets.shape[0]) - 1

    def get(self, i: int) -> torch.Tensor:
        return self.flat[int(self.offsets[i]) : int(self.offsets[i + 1])]

    def lengths(self) -> torch.Tensor:
        return self.offsets[1:] - self.offsets[:-1]

    @staticmethod
    def pack(states: Sequence[torch.Tensor]) -> PromptStates:
        import torch

        assert states, "nothing to pack"
        lengths = torch.tensor([s.shape[0] for s in states], dtype=torch.long)
        offsets = torch.zeros(len(states) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(lengths, 0)
        return PromptStates(flat=torch.cat(list(states)).to(torch.float16), offsets=offsets)


class StatesCache:
    """A directory of safetensors shards holding prompt states, plus ``index.json`` {key: [shard, row]}."""

    def __init__(self, directory: str | os.PathLike[str], encoder_name: str, max_tokens: int) -> None:
        self.directory = Path(directory)
        self.encoder_name = encoder_name
        self.max_tokens = max_tokens
        self.directory.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, list[int]] = self._read_index()
        self._shards: dict[int, PromptStates] = {}

    def _read_index(self) -> dict[str, list[int]]:
        index_path = self.directory / _INDEX
        if not index_path.exists():
            return {}
        try:
            meta = json.loads(index_path.read_text())
        except json.JSONDecodeError as exc:
            raise ScorerError(f"{index_path} is corrupt ({exc}); delete the cache directory") from exc
        if meta.get("encoder") != self.encoder_name or meta.get("max_tokens") != self.max_tokens:
            raise ScorerError(
                f"{self.directory} caches states of {meta.get('encoder')!r} at {meta.get('max_tokens')} "
                f"tokens, not {self.encoder_name!r} at {self.max_tokens}; use another --cache directory"
            )
        return {k: list(v) for k, v in meta["index"].items()}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the directory's writer lock: two processes filling one cache would otherwise both write
        shard N and index rows that point past the other's shard."""
        with open(self.directory / _LOCK, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def key(self, prompt: str) -> str:
        return prompt_key(self.encoder_name, self.max_tokens, prompt)

    def missing(self, prompts: Sequence[str]) -> list[str]:
        """Distinct prompts not cached yet, in first-seen order."""
        seen: set[str] = set()
        out: list[str] = []
        for p in prompts:
            k = self.key(p)
            if k not in self._index and k not in seen:
                seen.add(k)
                out.append(p)
        return out

    def fill(
        self,
        encoder: LoadedEncoder,
        prompts: Sequence[str],
        *,
        shard_size: int = 2000,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Encode and store every prompt not cached yet; returns how many were encoded."""
        from safetensors.torch import save_file

        with self._locked():
            # Another process may have added shards since we read the index: start from the disk's view.
            self._index = self._read_index()
            todo = self.missing(prompts)
            next_shard = 1 + max((v[0] for v in self._index.values()), default=-1)
            for start in range(0, len(todo), shard_size):
                chunk = todo[start : start + shard_size]
                packed = PromptStates.pack(
                    encode_states(encoder, chunk, max_tokens=self.max_tokens, progress=progress)
                )
                name = self.directory / f"shard-{next_shard:05d}.safetensors"
                partial = name.with_name(name.name + ".tmp")
                save_file({"flat": packed.flat, "offsets": packed.offsets}, str(partial))
                partial.replace(name)  # a crash never leaves a half-written shard under its real name
                for row, p in enumerate(chunk):
                    self._index[self.key(p)] = [next_shard, row]
                self._write_index()
                next_shard += 1
        return len(todo)

    def _write_index(self) -> None:
        tmp = self.directory / (_INDEX + ".tmp")
        tmp.write_text(
            json.dumps({"encoder": self.encoder_name, "max_tokens": self.max_tokens, "index": self._index})
        )
        tmp.replace(self.directory / _INDEX)

    def _shard(self, number: int) -> PromptStates:
        if number not in self._shards:
            from safetensors.torch import load_file

            path = self.directory / f"shard-{number:05d}.safetensors"
            try:
                tensors = load_file(str(path))
            except (OSError, RuntimeError) as exc:
                raise ScorerError(f"cannot read {path} ({exc}); delete the cache directory") from exc
            self._shards[number] = PromptStates(flat=tensors["flat"], offsets=tensors["offsets"])
        return self._shards[number]

    def gather(self, prompts: Sequence[str]) -> PromptStates:
        """The cached states of ``prompts`` (all must be cached), packed in the given order."""
        out = []
        for p in prompts:
            entry = self._index.get(self.key(p))
            if entry is None:
                raise ScorerError("a prompt's states are not cached; call fill() first")
            shard = self._shard(entry[0])
            if not 0 <= entry[1] < len(shard):
                raise ScorerError(
                    f"{self.directory}: index.json points at row {entry[1]} of shard {entry[0]}, which has "
                    f"{len(shard)} rows (the cache was written by two processes at once?); delete the cache "
                    "directory"
                )
            out.append(shard.get(entry[1]))
        return PromptStates.pack(out)
