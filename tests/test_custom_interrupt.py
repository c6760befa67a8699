"""Killing ``custom collect`` and ``custom judge`` mid-run (a real subprocess) and running them again: nothing
stored is ever bought twice, nothing is lost, and the only requests sent again are the ones the store names
as in flight when the process died (at most the concurrency limit). A Ctrl-C (SIGINT) waits for the requests
in flight, so after it not a single request is repeated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _custom_fakes import PersonaServer, config_toml, running_personas, write_prompts

pytestmark = pytest.mark.slow

CONCURRENCY = 3
N_PROMPTS = 16
MODELS = "strong-model@fake,cheap-model@fake"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, PersonaServer, dict[str, str]]]:
    with running_personas(delay_s=0.1) as server:
        (tmp_path / "config.toml").write_text(config_toml(server.base_url), encoding="utf-8")
        write_prompts(tmp_path / "prompts.jsonl", N_PROMPTS)
        env = {
            **os.environ,
            "POINTSMAN_DATA_DIR": str(tmp_path / "data"),
            "POINTSMAN_CONFIG_FILE": str(tmp_path / "config.toml"),
        }
        yield tmp_path, server, env


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from pointsman.cli import main; main()", *args]


def db(root: Path, name: str) -> Path:
    return root / "data" / "custom" / name / "router.db"


def count(root: Path, name: str, query: str) -> int:
    path = db(root, name)
    if not path.exists():
        return 0
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return int(con.execute(query).fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        con.close()


def start_and_stop(
    args: list[str], env: dict[str, str], root: Path, name: str, query: str, at: int, sig: int
) -> int:
    """Run ``args``; once ``query`` counts ``at`` rows, send ``sig``; return the exit code."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while count(root, name, query) < at:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "the run never got far enough to interrupt"
            time.sleep(0.02)
        proc.send_signal(sig)
        proc.wait(30)
        return proc.returncode
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def pair_counts(server: PersonaServer, persona: str) -> dict[str, int]:
    return {prompt: n for (model, prompt), n in server.counts.items() if model == persona}


def lost(root: Path, name: str, kind: str) -> set[tuple[str, str]]:
    con = sqlite3.connect(db(root, name))
    try:
        return {
            (r[0], r[1]) for r in con.execute("SELECT prompt_id, model FROM lost WHERE kind = ?", (kind,))
        }
    finally:
        con.close()


def prompt_texts(root: Path, name: str) -> dict[str, str]:
    con = sqlite3.connect(db(root, name))
    try:
        return {r[0]: r[1] for r in con.execute("SELECT id, text FROM prompts")}
    finally:
        con.close()


def check_no_repeats(
    root: Path, server: PersonaServer, name: str, kind: str, personas: set[str], expected: int
) -> None:
    """Every request was sent exactly once, except those the store lists as lost in flight (then at most
    twice). A request "is about" a lost pair when it is that prompt (collect) or a rubric quoting it (judge)."""
    texts = prompt_texts(root, name)
    lost_texts = {texts[pid] for pid, _ in lost(root, name, kind)}
    assert len(lost(root, name, kind)) <= CONCURRENCY
    total = repeated = 0
    for (model, prompt), n in server.counts.items():
        if model not in personas:
            continue
        total += n
        if n > 1:
            repeated += 1
            assert n == 2 and any(prompt == t or f"\n{t}\n" in prompt for t in lost_texts), (model, prompt, n)
    assert repeated <= len(lost(root, name, kind))
    assert total == expected + repeated


def test_collect_killed_then_resumed(world: tuple[Path, PersonaServer, dict[str, str]]) -> None:
    root, server, env = world
    args = cli("custom", "collect", "--name", "k", "--prompts", str(root / "prompts.jsonl"), "--models", MODELS,
               "--yes", "--concurrency", str(CONCURRENCY))  # fmt: skip
    code = start_and_stop(args, env, root, "k", "SELECT COUNT(*) FROM answers", 8, signal.SIGKILL)
    assert code == -signal.SIGKILL
    stored_before = count(root, "k", "SELECT COUNT(*) FROM answers")
    assert 8 <= stored_before < 2 * N_PROMPTS, "killed too late to test anything"
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"answers:        {2 * N_PROMPTS}" in done.stdout
    assert count(root, "k", "SELECT COUNT(*) FROM answers") == 2 * N_PROMPTS
    assert count(root, "k", "SELECT COUNT(*) FROM in_flight") == 0
    if lost(root, "k", "answer"):
        assert "in flight when the last run stopped" in done.stderr
    check_no_repeats(root, server, "k", "answer", {"strong", "cheap"}, 2 * N_PROMPTS)


def test_collect_ctrl_c_waits_for_requests_in_flight(
    world: tuple[Path, PersonaServer, dict[str, str]],
) -> None:
    root, server, env = world
    args = cli("custom", "collect", "--name", "c", "--prompts", str(root / "prompts.jsonl"), "--models", MODELS,
               "--yes", "--concurrency", str(CONCURRENCY))  # fmt: skip
    code = start_and_stop(args, env, root, "c", "SELECT COUNT(*) FROM answers", 8, signal.SIGINT)
    assert code == 0
    assert count(root, "c", "SELECT COUNT(*) FROM in_flight") == 0
    assert count(root, "c", "SELECT COUNT(*) FROM answers") < 2 * N_PROMPTS
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert count(root, "c", "SELECT COUNT(*) FROM answers") == 2 * N_PROMPTS
    assert not lost(root, "c", "answer")
    assert all(n == 1 for n in server.counts.values()), [k for k, n in server.counts.items() if n > 1]
    assert len(server.counts) == 2 * N_PROMPTS


def test_judge_killed_then_resumed(world: tuple[Path, PersonaServer, dict[str, str]]) -> None:
    root, server, env = world
    collect = cli("custom", "collect", "--name", "j", "--prompts", str(root / "prompts.jsonl"), "--models", MODELS,
                  "--yes", "--concurrency", "8")  # fmt: skip
    assert subprocess.run(collect, env=env, capture_output=True, timeout=120).returncode == 0
    judge = cli(
        "custom",
        "judge",
        "--name",
        "j",
        "--judge",
        "judge-model@fake",
        "--yes",
        "--concurrency",
        str(CONCURRENCY),
    )
    code = start_and_stop(judge, env, root, "j", "SELECT COUNT(*) FROM grades", 8, signal.SIGKILL)
    assert code == -signal.SIGKILL
    done = subprocess.run(judge, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"grades:         {2 * N_PROMPTS}" in done.stdout and "missing grades: 0" in done.stdout
    assert count(root, "j", "SELECT COUNT(*) FROM grades WHERE status = 'ok'") == 2 * N_PROMPTS
    assert count(root, "j", "SELECT COUNT(*) FROM in_flight") == 0
    # The judge sees the answer inside the rubric: its "prompt" is the rendered rubric, which contains the text.
    check_no_repeats(root, server, "j", "judge", {"judge"}, 2 * N_PROMPTS)
