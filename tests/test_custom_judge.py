"""The judge: robust grade parsing, the rubric template, and what happens to unparseable verdicts (asked
twice, then recorded as missing — never as a zero) and to a judge that fails."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from _custom_fakes import config_toml, running_personas
from hypothesis import given
from hypothesis import strategies as st

from pointsman.catalog import load_catalog
from pointsman.custom.judge import (
    DEFAULT_RUBRIC,
    judge_answers,
    load_rubric,
    parse_grade,
    plan_judging,
    read_references,
    render_rubric,
)
from pointsman.custom.store import Answer, CustomStore, PromptRow
from pointsman.errors import DataError


@pytest.mark.parametrize(
    ("verdict", "grade"),
    [
        ("The answer is fine.\nRating: [[8]]", 8.0),
        ("Rating: [[7.5]]", 7.5),
        ("[[ 9 ]]", 9.0),
        ("[[6/10]]", 6.0),
        ("Grades go from 1 to 10. I give Rating: 3", 3.0),
        ("**Score:** 7/10", 7.0),
        ("score = 4 out of 10", 4.0),
        ("Overall: 6/10.", 6.0),
        ("On a scale of [[1]] to [[10]] this is [[5]]", 5.0),  # the last verdict wins
        ('{"grade": 8, "explanation": "good"}', 8.0),
        ('{"score": 2.5}', 2.5),
        ("9", 9.0),
        ("  10  ", 10.0),
        ("Rating: [[10]]", 10.0),
    ],
)
def test_parse_grade_reads_common_verdicts(verdict: str, grade: float) -> None:
    assert parse_grade(verdict)[0] == grade


@pytest.mark.parametrize(
    "verdict",
    [
        "",
        "I cannot grade this.",
        "Rating: [[N]]",
        "Rating: [[0]]",  # outside 1..10
        "Rating: [[11]]",
        "Score: 85",  # not read as 8
        "[[100]]",
        '{"grade": "high"}',
        '{"grade": true}',
        "Rating: [[rating]]",
    ],
)
def test_parse_grade_refuses_what_is_not_a_grade(verdict: str) -> None:
    assert parse_grade(verdict)[0] is None


def test_parse_grade_keeps_the_explanation() -> None:
    grade, explanation = parse_grade("Correct and concise.\nRating: [[9]]")
    assert grade == 9.0 and explanation == "Correct and concise."


@given(st.integers(min_value=1, max_value=10), st.text(alphabet="abc ,.\n", max_size=40))
def test_parse_grade_finds_a_bracketed_grade_after_any_prose(n: int, prose: str) -> None:
    assert parse_grade(f"{prose}\nRating: [[{n}]]")[0] == float(n)


def test_default_rubric_with_and_without_reference() -> None:
    plain = render_rubric(DEFAULT_RUBRIC, "What is 2+2?", "4", None)
    assert "What is 2+2?" in plain and "\n4\n" in plain and "Reference" not in plain
    assert "Rating: [[N]]" in plain and "{" not in plain
    with_ref = render_rubric(DEFAULT_RUBRIC, "What is 2+2?", "5", "4")
    assert "[Reference answer]\n4\n" in with_ref and "contradicts it" in with_ref


def test_custom_rubric_placeholders_are_replaced_literally(tmp_path: Path) -> None:
    path = tmp_path / "rubric.txt"
    path.write_text('Reply as JSON {"grade": N}.\nQ: {question}\nA: {answer}\nRef: {reference}\n')
    rubric = load_rubric(path)
    out = render_rubric(rubric, "q?", "an answer with {question} inside", None)
    assert out.startswith('Reply as JSON {"grade": N}.')
    assert "A: an answer with {question} inside" in out  # text inside the answer is not a placeholder
    assert "Ref: (no reference answer)" in out


def test_rubric_errors_say_what_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "rubric.txt"
    path.write_text("Grade this: {answer}")
    with pytest.raises(DataError, match=r"lacks \{question\}"):
        load_rubric(path)
    with pytest.raises(DataError, match="no such rubric file"):
        load_rubric(tmp_path / "nope.txt")


def _store_with_answers(tmp_path: Path, n: int = 3) -> CustomStore:
    store = CustomStore.open(tmp_path / "data", "jt", create=True)
    store.add_prompts([PromptRow(f"p{i}", f"Question number {i}?") for i in range(n)])
    for i in range(n):
        store.record_answer(Answer(f"p{i}", "m", "m@fake", f"answer {i}", 5, 5, Decimal("0.001"), 0.1))
    return store


def test_unparseable_verdicts_are_asked_twice_then_missing_never_zero(tmp_path: Path) -> None:
    with running_personas() as server:
        (tmp_path / "config.toml").write_text(config_toml(server.base_url))
        catalog = load_catalog(tmp_path / "config.toml")
        store = _store_with_answers(tmp_path)
        mumbler = catalog.endpoint("mumbler-model@fake")
        outcome = asyncio.run(judge_answers(store, plan_judging(store, mumbler.name), mumbler))
        assert outcome.missing == 3 and outcome.graded == 0 and outcome.retried_unparseable == 3
        assert outcome.sent == 6 and all(n == 2 for n in server.counts.values())
        grades = store.grades(mumbler.name)
        assert {g.status for g in grades} == {"missing"}
        assert all(g.score is None and g.grade is None for g in grades)  # missing, not zero
        assert store.counts()["missing"] == 3
        # A rerun does not ask again about answers already marked missing.
        assert plan_judging(store, mumbler.name).pairs == []


def test_a_failing_judge_records_failures_that_the_next_run_retries(tmp_path: Path) -> None:
    with running_personas():
        from pointsman.providers.fake import running_fake_provider

        with running_fake_provider() as fake:
            (tmp_path / "config.toml").write_text(config_toml(fake.base_url))
            catalog = load_catalog(tmp_path / "config.toml")
            store = _store_with_answers(tmp_path, 2)
            broken = catalog.endpoint("broken-model@fake")
            outcome = asyncio.run(judge_answers(store, plan_judging(store, broken.name), broken, retries=0))
            assert outcome.failed == 2 and outcome.graded == 0 and outcome.missing == 0
            assert "HTTP 500" in outcome.errors[0]
            assert store.grades(broken.name) == []  # a failed request is no grade at all
            assert len(store.failures("judge")) == 2
            assert len(plan_judging(store, broken.name).pairs) == 2  # retried next time


def test_references_attach_by_id_or_text_and_unknown_ones_are_errors(tmp_path: Path) -> None:
    store = _store_with_answers(tmp_path, 2)
    ref = tmp_path / "ref.jsonl"
    ref.write_text(
        '{"id": "p0", "reference": "zero"}\n{"prompt": "Question number 1?", "reference": "one"}\n'
    )
    assert read_references(ref, store) == 2
    assert {p.id: p.reference for p in store.prompts()} == {"p0": "zero", "p1": "one"}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "p9", "reference": "x"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl, line 1, field 'id': no stored prompt with id 'p9'"):
        read_references(bad, store)
