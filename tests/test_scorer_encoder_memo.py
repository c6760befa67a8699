"""The prompt-states memo holds at most its byte bound, most recently used first, and never re-encodes a hit."""

from __future__ import annotations

import pytest
import torch
from _scorer_tiny import tiny_encoder

from pointsman.errors import ScorerError
from pointsman.scorer.memo import DEFAULT_MEMO_BYTES, MEMO_ENV, StatesMemo
from pointsman.scorer.states import encode_states


class CountingEncoder:
    """Counts the prompts the memo asks the real encoder for."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def __call__(self, encoder, prompts, *, max_tokens):  # type: ignore[no-untyped-def]
        self.encoded.extend(prompts)
        return encode_states(encoder, prompts, max_tokens=max_tokens)


def test_memo_is_bounded_in_bytes_and_lru(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pointsman.scorer.memo as memo_module

    enc = tiny_encoder()
    counter = CountingEncoder()
    monkeypatch.setattr(memo_module, "encode_states", counter)
    prompts = [f"prompt {i} " + "word " * i for i in range(12)]
    sizes = [t.numel() * t.element_size() for t in encode_states(enc, prompts, max_tokens=64)]
    bound = sum(sizes[-4:])  # room for the last four prompts, not for five
    memo = StatesMemo(max_bytes=bound)

    got = memo.states(enc, prompts, max_tokens=64)
    assert len(got) == 12 and counter.encoded == prompts
    assert memo.nbytes <= bound and len(memo) == 4
    torch.testing.assert_close(got.get(3).float(), encode_states(enc, [prompts[3]], max_tokens=64)[0].float())

    counter.encoded.clear()
    memo.states(enc, prompts[-4:], max_tokens=64)
    assert counter.encoded == []  # all four were kept
    memo.states(enc, [prompts[8], prompts[0]], max_tokens=64)  # 8 becomes the most recent; 0 evicts 9
    assert counter.encoded == [prompts[0]]
    counter.encoded.clear()
    memo.states(enc, [prompts[8], prompts[9]], max_tokens=64)
    assert counter.encoded == [prompts[9]] and memo.nbytes <= bound

    counter.encoded.clear()
    memo.states(enc, [prompts[0], prompts[0]], max_tokens=32)  # another window is another key, encoded once
    assert counter.encoded == [prompts[0]]


def test_a_prompt_larger_than_the_bound_is_returned_not_kept() -> None:
    enc = tiny_encoder()
    memo = StatesMemo(max_bytes=10)
    got = memo.states(enc, ["far more than ten bytes of states"], max_tokens=64)
    assert len(got) == 1 and got.get(0).shape[0] > 2
    assert len(memo) == 0 and memo.nbytes == 0


def test_default_bound_suits_serving_and_the_environment_can_raise_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(MEMO_ENV, raising=False)
    assert StatesMemo().max_bytes == DEFAULT_MEMO_BYTES
    assert 16 * 2**20 <= DEFAULT_MEMO_BYTES <= 128 * 2**20
    monkeypatch.setenv(MEMO_ENV, "512")
    assert StatesMemo().max_bytes == 512 * 2**20
    assert StatesMemo(max_bytes=7).max_bytes == 7
    for bad in ("lots", "-1", "nan"):
        monkeypatch.setenv(MEMO_ENV, bad)
        with pytest.raises(ScorerError, match=f"{MEMO_ENV}='{bad}' is not a size"):
            StatesMemo()
