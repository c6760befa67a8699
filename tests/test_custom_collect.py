"""``custom collect`` and ``custom import``: prompts files, the cost estimate and confirmation, retries of
rate-limited requests, failures kept for the next run, missing keys said before anything is sent, and the
two import formats with their errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from _custom_fakes import PersonaServer, config_toml, running_personas, write_prompts
from typer.testing import CliRunner

from pointsman.catalog import load_catalog
from pointsman.custom.calls import resolve_endpoints
from pointsman.custom.collect import collect_answers, plan_collection, prompt_id, read_prompts
from pointsman.custom.importer import import_file
from pointsman.custom.store import CustomStore, PromptRow
from pointsman.errors import DataError, MissingKeyError, UnknownNameError


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, PersonaServer]]:
    with running_personas() as server:
        (tmp_path / "config.toml").write_text(config_toml(server.base_url), encoding="utf-8")
        monkeypatch.setenv("POINTSMAN_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.setenv("POINTSMAN_CONFIG_FILE", str(tmp_path / "config.toml"))
        yield tmp_path, server


def invoke(*args: str, input: str | None = None) -> tuple[int, str, str]:
    from pointsman.cli.app import build_app

    result = CliRunner().invoke(build_app(), list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


# --- prompts files ------------------------------------------------------------------------------------------


def test_prompts_files_in_three_formats(tmp_path: Path) -> None:
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"id": 7, "prompt": "a"}\n\n{"prompt": "b", "reference": "B"}\n')
    rows = read_prompts(jsonl)
    assert rows == [PromptRow("7", "a"), PromptRow(prompt_id("b"), "b", "B")]
    csv_file = tmp_path / "p.csv"
    csv_file.write_text("id,prompt\nx,hello\n,world\n")
    assert [(r.id, r.text) for r in read_prompts(csv_file)] == [("x", "hello"), (prompt_id("world"), "world")]
    txt = tmp_path / "p.txt"
    txt.write_text("one\n\ntwo\none\n")
    assert [r.text for r in read_prompts(txt)] == ["one", "two"]  # the same text is the same prompt


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.jsonl", '{"prompt": "a"}\nnot json\n', r"p.jsonl, line 2: not valid JSON"),
        (
            "p.jsonl",
            '{"text": "a"}\n',
            r'line 1, field \'prompt\': expected an object with a non-empty "prompt"',
        ),
        ("p.jsonl", '{"id": "x", "prompt": "a"}\n{"id": "x", "prompt": "b"}\n', "id 'x' is used for two"),
        ("p.csv", "question\nhi\n", "needs a 'prompt' column"),
        ("p.csv", 'prompt\n\n" "\n', r"line 3, field 'prompt': empty prompt"),
        ("p.txt", "\n\n", "holds no prompts"),
    ],
)
def test_prompts_file_errors_name_the_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_prompts(path)
    with pytest.raises(DataError, match="no such prompts file"):
        read_prompts(tmp_path / "missing.jsonl")


# --- endpoints ----------------------------------------------------------------------------------------------


def test_endpoint_names_are_checked(world: tuple[Path, PersonaServer]) -> None:
    root, _ = world
    catalog = load_catalog(root / "config.toml")
    with pytest.raises(UnknownNameError, match="did you mean 'strong-model@fake'"):
        resolve_endpoints(catalog, ["strong-modle@fake"])
    with pytest.raises(DataError, match="give model@provider"):
        resolve_endpoints(catalog, ["strong-model"])
    with pytest.raises(DataError, match="two endpoints for model 'strong-model'"):
        resolve_endpoints(catalog, ["strong-model@fake", "strong-model@fake"])
    with pytest.raises(DataError, match="no endpoints given"):
        resolve_endpoints(catalog, [" "])


def test_a_missing_api_key_is_said_before_anything_is_sent(
    world: tuple[Path, PersonaServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, server = world
    text = (
        (root / "config.toml")
        .read_text()
        .replace("itl_prior_ms = 5", 'itl_prior_ms = 5\napi_key_env = "FAKE_KEY_FOR_TEST"', 1)
    )
    (root / "config.toml").write_text(text)
    monkeypatch.delenv("FAKE_KEY_FOR_TEST", raising=False)
    catalog = load_catalog(root / "config.toml")
    endpoints = resolve_endpoints(catalog, ["strong-model@fake"])
    with CustomStore.open(root / "data", "keys", create=True) as store:
        store.add_prompts([PromptRow("a", "hello")])
        plan = plan_collection(store, endpoints, max_tokens=16)
        with pytest.raises(MissingKeyError, match="set the FAKE_KEY_FOR_TEST environment variable"):
            asyncio.run(collect_answers(store, plan, max_tokens=16))
        assert store.answered() == set() and store.counts()["failed_answers"] == 0
    assert sum(server.counts.values()) == 0


# --- collect ------------------------------------------------------------------------------------------------


def test_estimate_then_confirmation_no_sends_nothing(world: tuple[Path, PersonaServer]) -> None:
    root, server = world
    prompts = write_prompts(root / "prompts.jsonl", 4)
    code, _, err = invoke(
        "custom", "collect", "--name", "ask", "--prompts", str(prompts), "--models", "strong-model@fake,cheap-model@fake",
        input="n\n",
    )  # fmt: skip
    assert code != 0
    assert "8 requests to 2 endpoint(s)" in err and "estimated $" in err and "at most $" in err
    assert sum(server.counts.values()) == 0


def test_estimate_counts_only_what_is_left_and_bounds_the_cost(world: tuple[Path, PersonaServer]) -> None:
    root, _ = world
    catalog = load_catalog(root / "config.toml")
    endpoints = resolve_endpoints(catalog, ["strong-model@fake", "cheap-model@fake"])
    with CustomStore.open(root / "data", "est", create=True) as store:
        store.add_prompts([PromptRow("a", "x" * 300), PromptRow("b", "y")])
        plan = plan_collection(store, endpoints, max_tokens=100, expected_output_tokens=50)
        assert len(plan.pairs) == 4 and plan.done == 0
        assert Decimal(0) < plan.expected_usd < plan.max_usd
        # at most: every answer uses all 100 tokens; strong costs $30/M output tokens, cheap $0.1/M
        assert plan.max_usd >= Decimal(2 * 100 * 30 + 2 * 100 * 0.1) / Decimal(1_000_000)


def test_rate_limited_requests_are_retried_and_failures_kept_for_the_next_run(
    world: tuple[Path, PersonaServer],
) -> None:
    root, _ = world
    prompts = write_prompts(root / "prompts.jsonl", 3)
    code, out, err = invoke(
        "custom", "collect", "--name", "faults", "--prompts", str(prompts),
        "--models", "flaky-model@fake,broken-model@fake", "--yes", "--retries", "1",
    )  # fmt: skip
    assert code == 0, err
    assert "answers:        3" in out  # flaky: a 429 with Retry-After 0 then an answer
    assert "failed:         3 answers" in out and "HTTP 500" in err
    with CustomStore.open(root / "data", "faults") as store:
        assert {m for _, m in store.answered()} == {"flaky-model"}
        assert {m for _, m, _, _ in store.failures("answer")} == {"broken-model"}
        catalog = load_catalog(root / "config.toml")
        endpoints = resolve_endpoints(catalog, ["flaky-model@fake", "broken-model@fake"])
        plan = plan_collection(store, endpoints, max_tokens=16)
        assert {e.model for _, e in plan.pairs} == {"broken-model"}  # only the failures are left


def test_answers_keep_usage_cost_and_latency(world: tuple[Path, PersonaServer]) -> None:
    root, server = world
    prompts = write_prompts(root / "prompts.jsonl", 2)
    code, out, err = invoke(
        "custom",
        "collect",
        "--name",
        "u",
        "--prompts",
        str(prompts),
        "--models",
        "strong-model@fake",
        "--yes",
    )
    assert code == 0, err
    assert "cost spent:" in out and "this run:" in out
    assert "collect" in err and "2/2" in err and "spent, 0 failed" in err  # the progress bar's last frame
    with CustomStore.open(root / "data", "u") as store:
        answers = store.answers(with_text=True)
        assert len(answers) == 2
        for a in answers:
            assert a.text and a.text.startswith("CORRECT") and a.endpoint == "strong-model@fake"
            assert a.input_tokens and a.output_tokens and a.latency_s is not None and a.latency_s >= 0
            assert a.cost_usd == Decimal(10 * a.input_tokens + 30 * a.output_tokens) / Decimal(1_000_000)
        assert store.spent_usd() == sum((a.cost_usd or Decimal(0) for a in answers), Decimal(0))
    # A second run has nothing to do and sends nothing.
    code, out, _ = invoke("custom", "collect", "--name", "u", "--models", "strong-model@fake", "--yes")
    assert code == 0 and "nothing to collect" in out
    assert max(server.counts.values()) == 1


def test_one_endpoint_per_model_across_runs(world: tuple[Path, PersonaServer]) -> None:
    root, _ = world
    with CustomStore.open(root / "data", "one", create=True) as store:
        store.add_endpoints({"m": "m@a"})
        with pytest.raises(DataError, match="collected from m@a"):
            store.add_endpoints({"m": "m@b"})


def test_unknown_router_name_lists_close_ones(world: tuple[Path, PersonaServer]) -> None:
    root, _ = world
    CustomStore.open(root / "data", "support-bot", create=True).close()
    with pytest.raises(UnknownNameError, match="did you mean 'support-bot'"):
        CustomStore.open(root / "data", "support-bott")
    with pytest.raises(DataError, match="not a valid custom router name"):
        CustomStore.open(root / "data", "../etc", create=True)


# --- import -------------------------------------------------------------------------------------------------


def test_import_csv_with_one_score_column_per_model(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("id,prompt,split,gpt-x,small-y\na,first,train,8,3\nb,second,test,,7\n")
    with CustomStore.open(tmp_path / "data", "imp", create=True) as store:
        outcome = import_file(store, path, scale=10)
        assert (outcome.prompts, outcome.scores, outcome.models) == (2, 3, ["gpt-x", "small-y"])
        scores = {(g.prompt_id, g.model): g.score for g in store.grades("import")}
        assert scores == {("a", "gpt-x"): 0.8, ("a", "small-y"): 0.3, ("b", "small-y"): 0.7}
        assert {p.id: p.split for p in store.prompts()} == {"a": "train", "b": "test"}
        assert sorted(store.endpoints()) == ["gpt-x", "small-y"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("question,m\nq,1\n", "needs a 'prompt' column"),
        ("prompt\nq\n", "no score columns"),
        ("prompt,m\nq,high\n", r"line 2, field 'm': not a number: 'high'"),
        ("prompt,m\nq,8\n", r"outside 0..1 \(1..10 grades\? pass --scale 10\)"),
        ("prompt,split,m\nq,dev,0.5\n", "expected 'train' or 'test'"),
        ("prompt,m\n,0.5\n", "empty prompt"),
    ],
)
def test_import_csv_errors_name_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with (
        CustomStore.open(tmp_path / "data", "bad", create=True) as store,
        pytest.raises(DataError, match=message),
    ):
        import_file(store, path)


def test_import_routing_jsonl_keeps_lengths_and_costs(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    rows = [
        {"id": "s/1", "source": "s", "prompt": "p1", "scores": {"a": 1.0, "b": 0.0}, "output_chars": {"a": 40}, "cost_usd": {"a": 0.01}},
        {"id": "s/2", "source": "s", "split": "test", "prompt": "p2", "scores": {"a": 0.5}},
    ]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with CustomStore.open(tmp_path / "data", "j", create=True) as store:
        outcome = import_file(store, path)
        assert outcome.scores == 3 and outcome.models == ["a", "b"]
        assert store.answer_facts()[("s/1", "a")] == (40, 0.01)
        assert store.spent_usd() == Decimal(0)  # imported costs were not spent by us
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "source": "s", "prompt": "p", "scores": {"a": 2}}\n')
    with CustomStore.open(tmp_path / "data", "j") as store, pytest.raises(DataError, match="outside"):
        import_file(store, bad)
    with (
        CustomStore.open(tmp_path / "data", "j") as store,
        pytest.raises(DataError, match="unknown file type"),
    ):
        (tmp_path / "x.parquet").write_text("")
        import_file(store, tmp_path / "x.parquet")


def test_a_second_run_on_a_busy_router_is_refused(world: tuple[Path, PersonaServer]) -> None:
    from pointsman.cli.app import build_app

    root, server = world
    prompts = write_prompts(root / "prompts.jsonl", 2)
    args = [
        "custom",
        "collect",
        "--name",
        "busy",
        "--prompts",
        str(prompts),
        "--models",
        "strong-model@fake",
        "--yes",
    ]
    with CustomStore.open(root / "data", "busy", create=True) as store, store.exclusive("custom collect"):
        result = CliRunner().invoke(build_app(), args)
        assert result.exit_code != 0
        assert "busy: 'custom collect' (pid" in str(result.exception)
        assert "is running on it" in str(result.exception)
    assert sum(server.counts.values()) == 0
    code, _, err = invoke(*args)
    assert code == 0, err  # the lock went with the first run
