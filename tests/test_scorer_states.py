"""Prompt-state caching and truncation."""

from __future__ import annotations

import json
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


def test_two_writers_of_one_cache_do_not_overwrite_each_other(tmp_path: Path) -> None:
    # Two processes that opened the cache before either filled it: each must see the other's shards when it
    # writes, or both write shard 0 and one's index rows point into the other's shard.
    enc = tiny_encoder(str(tmp_path))
    first, second = StatesCache(tmp_path / "c", "tiny", 32), StatesCache(tmp_path / "c", "tiny", 32)
    a, b = ["alpha one", "alpha two"], ["beta one", "beta two", "beta three"]
    assert first.fill(enc, a) == 2
    assert second.fill(enc, b + a) == 3  # a is already on disk, though `second` opened before it was written
    reopened = StatesCache(tmp_path / "c", "tiny", 32)
    assert reopened.missing(a + b) == []
    got = reopened.gather(a + b)
    direct = encode_states(enc, a + b, max_tokens=32)
    for i in range(len(direct)):
        torch.testing.assert_close(got.get(i).float(), direct[i].float(), atol=2e-3, rtol=1e-2)
    assert not list((tmp_path / "c").glob("*.tmp"))


def test_an_index_row_past_its_shard_is_a_clear_error(tmp_path: Path) -> None:
    enc = tiny_encoder(str(tmp_path))
    StatesCache(tmp_path / "c", "tiny", 32).fill(enc, ["only one"])
    index = tmp_path / "c" / "index.json"
    meta = json.loads(index.read_text())
    meta["index"] = {k: [0, 5] for k in meta["index"]}
    index.write_text(json.dumps(meta))
    with pytest.raises(ScorerError, match="row 5 of shard 0, which has 1 rows"):
        StatesCache(tmp_path / "c", "tiny", 32).gather(["only one"])
