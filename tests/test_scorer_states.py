"""Prompt-state caching and truncation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _scorer_tiny import tiny_encoder

from pointsman.errors import ScorerError
from pointsman.scorer.states import PromptStates, StatesCache, encode_states, tokenize_prompts, truncate_ids


def test_truncate_keeps_head_and_tail() -> None:
    ids = list(range(10))
    assert truncate_ids(ids, 20) == (ids, False)
    kept, cut = truncate_ids(ids, 4)
    assert cut and kept == [0, 1, 8, 9]


def test_tokenize_marks_long_and_handles_empty(tmp_path: Path) -> None:
    enc = tiny_encoder(str(tmp_path))
    ids, cut = tokenize_prompts(enc, ["", "short prompt", "word " * 300], max_tokens=16)
    assert len(ids[0]) == 2  # [CLS] [SEP]
    assert cut == [False, False, True]
    assert (
        len(ids[2]) == 16
        and ids[2][0] == enc.tokenizer.cls_token_id
        and ids[2][-1] == enc.tokenizer.sep_token_id
    )


def test_batched_states_match_one_by_one(tmp_path: Path) -> None:
    enc = tiny_encoder(str(tmp_path))
    prompts = ["a b c", "one two three four five six", "", "x"]
    together = encode_states(enc, prompts, max_tokens=32, tokens_per_batch=64)
    for p, t in zip(prompts, together, strict=True):
        (alone,) = encode_states(enc, [p], max_tokens=32)
        assert t.dtype == torch.float16
        torch.testing.assert_close(t.float(), alone.float(), atol=2e-3, rtol=1e-2)


def test_cache_fills_once_and_resumes(tmp_path: Path) -> None:
    enc = tiny_encoder(str(tmp_path))
    cache = StatesCache(tmp_path / "c", "tiny", 32)
    prompts = [f"prompt number {i}" for i in range(7)]
    assert cache.fill(enc, prompts[:3], shard_size=2) == 3
    reopened = StatesCache(tmp_path / "c", "tiny", 32)
    assert reopened.missing(prompts + prompts[:1]) == prompts[3:]
    assert reopened.fill(enc, prompts, shard_size=2) == 4
    got = reopened.gather([prompts[5], prompts[0]])
    direct = encode_states(enc, [prompts[5], prompts[0]], max_tokens=32)
    assert isinstance(got, PromptStates) and len(got) == 2
    torch.testing.assert_close(got.get(0).float(), direct[0].float(), atol=2e-3, rtol=1e-2)


def test_cache_refuses_another_encoder(tmp_path: Path) -> None:
    enc = tiny_encoder(str(tmp_path))
    StatesCache(tmp_path / "c", "tiny", 32).fill(enc, ["hello"])
    with pytest.raises(ScorerError, match="another --cache directory"):
        StatesCache(tmp_path / "c", "other", 32)


def test_cache_reports_missing_prompts_and_corruption(tmp_path: Path) -> None:
    cache = StatesCache(tmp_path / "c", "tiny", 32)
    with pytest.raises(ScorerError, match="fill"):
        cache.gather(["never cached"])
    (tmp_path / "c" / "index.json").write_text("{not json")
    with pytest.raises(ScorerError, match="delete the cache"):
        StatesCache(tmp_path / "c", "tiny", 32)
