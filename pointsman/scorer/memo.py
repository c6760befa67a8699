"""An in-memory map from prompt to its encoder states, bounded in bytes, so that refitting on overlapping prompts
(cross-validation folds) and repeated requests encode each prompt once.

A prompt's states are (T, C) fp16: 768 bytes a token for MiniLM, ~197 kB for a prompt at the 256-token window,
so a bound on the number of prompts says little about memory (4,096 long prompts are ~800 MB). The memo keeps
the most recently used prompts within ``max_bytes`` (default 64 MiB: ~340 window-long prompts, ~3,500 of 25
tokens); a working set larger than that is re-encoded instead of held. An evaluation refits on the same
prompts fold after fold, and a big source's states do not fit 64 MiB (RouterBench's 3,000 evaluated prompts are
~520 MB): set ``POINTSMAN_STATES_MEMO_MB`` (read when the memo is built, i.e. when ``pointsman.scorer.neural``
is imported) to hold them.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pointsman.errors import ScorerError
from pointsman.scorer.states import PromptStates, encode_states

if TYPE_CHECKING:
    import torch

    from pointsman.scorer.encoder import LoadedEncoder

__all__ = ["DEFAULT_MEMO_BYTES", "MEMO_ENV", "StatesMemo"]

DEFAULT_MEMO_BYTES = 64 * 2**20
MEMO_ENV = "POINTSMAN_STATES_MEMO_MB"


def _bound_from_env() -> int:
    raw = os.environ.get(MEMO_ENV)
    if raw is None or raw == "":
        return DEFAULT_MEMO_BYTES
    try:
        megabytes = float(raw)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:  # also refuses nan
        raise ScorerError(
            f"{MEMO_ENV}={raw!r} is not a size; give the memo's bound in MiB, e.g. {MEMO_ENV}=512"
        )
    return int(megabytes * 2**20)


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


class StatesMemo:
    """Least-recently-used prompt states, at most ``max_bytes`` of tensor data in all (a single prompt larger
    than the bound is returned but not kept). Thread-safe; two threads may encode the same new prompt once each."""

    def __init__(self, max_bytes: int | None = None) -> None:
        """``max_bytes`` default: ``$POINTSMAN_STATES_MEMO_MB`` MiB, else 64 MiB."""
        self.max_bytes = _bound_from_env() if max_bytes is None else max_bytes
        assert self.max_bytes >= 0, "max_bytes must be >= 0"
        self._store: OrderedDict[tuple[str, int, str], torch.Tensor] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._store)

    @property
    def nbytes(self) -> int:
        """Bytes of tensor data held now (never more than ``max_bytes``)."""
        return self._bytes

    def states(self, encoder: LoadedEncoder, prompts: Sequence[str], max_tokens: int) -> PromptStates:
        keys = [(encoder.path, max_tokens, p) for p in prompts]
        found: dict[tuple[str, int, str], torch.Tensor] = {}
        with self._lock:
            for k in keys:
                if k in self._store:
                    found[k] = self._store[k]
                    self._store.move_to_end(k)
        todo = list(dict.fromkeys(k[2] for k in keys if k not in found))
        if todo:
            fresh = encode_states(encoder, todo, max_tokens=max_tokens)
            with self._lock:
                for prompt, tensor in zip(todo, fresh, strict=True):
                    key = (encoder.path, max_tokens, prompt)
                    found[key] = tensor
                    self._put(key, tensor)
        return PromptStates.pack([found[k] for k in keys])

    def _put(self, key: tuple[str, int, str], tensor: torch.Tensor) -> None:
        size = _nbytes(tensor)
        if size > self.max_bytes:
            return
        old = self._store.pop(key, None)
        if old is not None:
            self._bytes -= _nbytes(old)
        self._store[key] = tensor
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, evicted = self._store.popitem(last=False)
            self._bytes -= _nbytes(evicted)
        assert self._bytes >= 0, "the memo's byte count went negative"
