"""Honest splits, subsampling, prices and the cost model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pointsman.data import RoutingRecord
from pointsman.errors import DataError
from pointsman.evaluation.costs import (
    DEFAULT_OUTPUT_TOKENS,
    OutputLengths,
    Price,
    catalogue_prices,
    estimate_tokens,
    expected_cost_matrix,
    load_prices,
    realised_cost_matrix,
    require_prices,
)
from pointsman.evaluation.splits import plan_splits, subsample


def rec(
    i: int,
    prompt: str | None = None,
    *,
    split: str = "train",
    task: str = "t",
    source: str = "s",
    scores: dict[str, float] | None = None,
    chars: dict[str, int] | None = None,
    cost: dict[str, float] | None = None,
) -> RoutingRecord:
    return RoutingRecord(
        id=f"s/{i}",
        source=source,
        task=task,
        split=split,
        prompt=prompt if prompt is not None else f"prompt {i}",
        label="",
        scores=scores or {"a": 1.0, "b": 0.0},
        output_chars=chars or {},
        cost_usd=cost or {},
    )


def test_source_test_split_is_used_and_leaked_prompts_leave_train() -> None:
    records = [rec(i) for i in range(6)] + [rec(10, "prompt 0", split="test"), rec(11, split="test")]
    plan = plan_splits(records)
    assert plan.kind == "source test split"
    (fold,) = plan.folds
    assert fold.test == [6, 7]
    assert 0 not in fold.train  # "prompt 0" is also a test prompt
    assert fold.train == [1, 2, 3, 4, 5]
    assert "1 train rows sharing a prompt with test dropped" in plan.description


def test_kfold_groups_repeated_prompts_and_covers_every_row_once() -> None:
    records = [rec(i, f"p{i % 13}") for i in range(40)]  # every prompt text appears 3 or 4 times
    plan = plan_splits(records, seed=3)
    assert plan.kind == "k-fold" and len(plan.folds) == 5
    seen: list[int] = []
    for fold in plan.folds:
        test_prompts = {records[i].prompt for i in fold.test}
        train_prompts = {records[i].prompt for i in fold.train}
        assert not test_prompts & train_prompts
        assert sorted(fold.train + fold.test) == list(range(40))
        seen.extend(fold.test)
    assert sorted(seen) == list(range(40))
    assert plan_splits(records, seed=3) == plan  # seeded: the same folds every time


def test_large_data_gets_a_seeded_holdout_and_folds_can_be_forced() -> None:
    records = [rec(i) for i in range(100)]
    plan = plan_splits(records, kfold_below=50, test_fraction=0.25)
    assert plan.kind == "holdout"
    (fold,) = plan.folds
    assert len(fold.test) == 25 and len(fold.train) == 75
    assert plan_splits(records, folds=4).kind == "k-fold"
    with_test = [*records, rec(200, split="test")]
    assert plan_splits(with_test, folds=3).kind == "k-fold"


def test_impossible_fold_counts_are_explained() -> None:
    with pytest.raises(DataError, match="--folds between 2 and 3"):
        plan_splits([rec(i) for i in range(3)], folds=5)


def test_subsample_keeps_whole_prompt_groups_and_the_whole_test_split() -> None:
    records = [rec(i, f"p{i // 2}", split="test" if i >= 160 else "train") for i in range(200)]
    sub = subsample(records, 50, seed=1)
    prompts = {r.prompt for r in sub}
    assert len(prompts) == 50 + 20  # 50 training prompts and all 20 test prompts
    assert all(sum(r.prompt == p for r in sub) == 2 for p in prompts)  # both rows of every kept prompt
    assert sum(r.split == "test" for r in sub) == 40
    assert subsample(records, 50, seed=1) == sub
    assert subsample(records, None) == records
    assert subsample(records, 80) == records


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_prices_load_ignore_notes_and_later_files_win(tmp_path: Path) -> None:
    a = write(tmp_path, "a.json", json.dumps({"_note": "x", "m1": [1, 2], "m2": [3, 4]}))
    b = write(tmp_path, "b.json", json.dumps({"m2": [5, 6.5]}))
    prices = load_prices([a, b])
    assert prices == {"m1": Price(1, 2), "m2": Price(5, 6.5)}
    assert prices["m2"].cost(1000, 2000) == pytest.approx((5 * 1000 + 6.5 * 2000) / 1e6)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"m": [1]}', "field 'm'"),
        ('{"m": [1, -2]}', "non-negative"),
        ('{"m": "cheap"}', "field 'm'"),
        ("[1, 2]", "expected an object"),
        ('{"m": [1, 2],', "not valid JSON"),
    ],
)
def test_bad_prices_files_name_the_file_and_the_model(tmp_path: Path, text: str, message: str) -> None:
    p = write(tmp_path, "bad.json", text)
    with pytest.raises(DataError, match=message) as info:
        load_prices([p])
    assert str(p) in info.value.message


def test_missing_prices_file_and_missing_model(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such prices file"):
        load_prices([tmp_path / "nope.json"])
    with pytest.raises(DataError, match=r"no price for model\(s\) 'm3'.*--prices") as info:
        require_prices({"m1": Price(1, 1)}, ["m1", "m3"], "prices.json")
    assert info.value.message.startswith("prices.json")


def test_catalogue_prices_take_the_cheapest_endpoint() -> None:
    from pointsman.catalog import load_catalog

    prices = catalogue_prices()
    catalog = load_catalog()
    for model in catalog.models:
        cheapest = min(
            float(e.input_usd_per_mtok + e.output_usd_per_mtok) for e in catalog.endpoints(models=[model])
        )
        assert prices[model].input_per_m + prices[model].output_per_m == pytest.approx(cheapest)


def test_expected_cost_uses_training_lengths_never_the_answer_being_scored() -> None:
    train = [rec(i, task="code", chars={"a": 400, "b": 800}) for i in range(5)]
    train += [rec(9, task="chat", chars={"a": 40})]  # too few chat answers: falls back to the source mean
    lengths = OutputLengths(train)
    test = rec(100, "x" * 400, task="code", chars={"a": 40_000, "b": 4})
    prices = {"a": Price(1.0, 10.0), "b": Price(2.0, 20.0)}
    expected = expected_cost_matrix([test], ["a", "b"], prices, lengths)
    assert expected[0, 0] == pytest.approx((100 * 1.0 + 100 * 10.0) / 1e6)  # 400 chars = 100 tokens
    assert expected[0, 1] == pytest.approx((100 * 2.0 + 200 * 20.0) / 1e6)
    realised = realised_cost_matrix([test], ["a", "b"], prices, lengths)
    assert realised[0, 0] == pytest.approx((100 * 1.0 + 10_000 * 10.0) / 1e6)
    assert realised[0, 1] == pytest.approx((100 * 2.0 + 1 * 20.0) / 1e6)
    chat = rec(101, "y" * 40, task="chat")
    source_mean_a = np.mean([100.0] * 5 + [10.0])
    assert lengths.tokens(chat, "a") == pytest.approx(source_mean_a)


def test_published_cost_wins_and_unknown_lengths_fall_back() -> None:
    lengths = OutputLengths([])
    r = rec(1, "z" * 8, cost={"a": 0.5})
    prices = {"a": Price(1, 1), "b": Price(1, 1)}
    realised = realised_cost_matrix([r], ["a", "b"], prices, lengths)
    assert realised[0, 0] == 0.5
    assert realised[0, 1] == pytest.approx((2 + DEFAULT_OUTPUT_TOKENS) / 1e6)
    assert estimate_tokens(0) == 1.0
