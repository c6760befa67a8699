"""One custom router's state on disk: ``<data_dir>/custom/NAME/`` with an SQLite file ``router.db``.

Why SQLite in a per-router directory (and not the ledger's database): every answer is paid for, so it is
committed the moment it arrives, in one transaction with the removal of its "in flight" mark; SQLite's WAL
journal makes that durable against a crash or SIGKILL with no recovery code of ours, and a primary key on
(prompt, model) makes "never store, and so never buy, the same answer twice" a constraint rather than a
convention. The directory also holds the trained checkpoint, the evaluation report and the deployment file, so
``custom delete`` is one ``rmtree`` and a router can be copied between machines as a folder.

Tables: ``meta`` (key/value), ``prompts``, ``answers`` (one per prompt and model, with usage, cost and
latency), ``failures`` (the last error of a pair that could not be answered; retried on the next run),
``grades`` (one per prompt, model and judge: a 1..10 grade and its 0..1 score, or ``missing``), and
``in_flight`` (a request that was sent and not yet stored; a row left over after a crash names a request whose
answer was lost and must be bought again — reported, never hidden).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pointsman.errors import DataError, InvalidRequestError, UnknownNameError

__all__ = [
    "Answer",
    "CustomStore",
    "Grade",
    "PromptRow",
    "check_name",
    "custom_root",
    "list_names",
    "router_dir",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
DB_FILE = "router.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prompts (
    id TEXT PRIMARY KEY, seq INTEGER NOT NULL, text TEXT NOT NULL, reference TEXT, split TEXT
);
CREATE TABLE IF NOT EXISTS answers (
    prompt_id TEXT NOT NULL, model TEXT NOT NULL, endpoint TEXT, text TEXT,
    input_tokens INTEGER, output_tokens INTEGER, output_chars INTEGER, cost_usd TEXT,
    latency_s REAL, finish TEXT, created REAL NOT NULL,
    PRIMARY KEY (prompt_id, model)
);
CREATE TABLE IF NOT EXISTS failures (
    kind TEXT NOT NULL, prompt_id TEXT NOT NULL, model TEXT NOT NULL, judge TEXT NOT NULL,
    error TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (kind, prompt_id, model, judge)
);
CREATE TABLE IF NOT EXISTS grades (
    prompt_id TEXT NOT NULL, model TEXT NOT NULL, judge TEXT NOT NULL,
    grade REAL, score REAL, status TEXT NOT NULL, explanation TEXT, raw TEXT,
    tries INTEGER NOT NULL, cost_usd TEXT, created REAL NOT NULL,
    PRIMARY KEY (prompt_id, model, judge)
);
CREATE TABLE IF NOT EXISTS in_flight (
    kind TEXT NOT NULL, prompt_id TEXT NOT NULL, model TEXT NOT NULL, judge TEXT NOT NULL,
    started REAL NOT NULL,
    PRIMARY KEY (kind, prompt_id, model, judge)
);
CREATE TABLE IF NOT EXISTS lost (
    kind TEXT NOT NULL, prompt_id TEXT NOT NULL, model TEXT NOT NULL, judge TEXT NOT NULL,
    started REAL NOT NULL, noticed REAL NOT NULL
);
"""


def check_name(name: str) -> str:
    """A custom router's name: letters, digits, ``_.-``, starting with a letter or digit (it goes into router
    strings as ``router@NAME|...`` and into a directory name)."""
    if not _NAME_RE.match(name):
        raise DataError(
            f"{name!r} is not a valid custom router name; use 1-64 letters, digits, '_', '.', '-', "
            "starting with a letter or digit (e.g. 'support-bot')",
            field="name",
        )
    return name


def custom_root(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / "custom"


def router_dir(data_dir: str | os.PathLike[str], name: str) -> Path:
    return custom_root(data_dir) / check_name(name)


@dataclass(frozen=True)
class PromptRow:
    id: str
    text: str
    reference: str | None = None
    split: str | None = None


@dataclass(frozen=True)
class Answer:
    prompt_id: str
    model: str
    endpoint: str | None
    text: str | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: Decimal | None
    latency_s: float | None


@dataclass(frozen=True)
class Grade:
    prompt_id: str
    model: str
    judge: str
    grade: float | None  # 1..10, None when missing
    score: float | None  # 0..1 (grade / 10), None when missing
    status: str  # "ok" | "missing"


class CustomStore:
    """The SQLite store of one custom router. Open with ``CustomStore.open(data_dir, name, create=...)``."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self.path = directory / DB_FILE
        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an answer is money: durable at commit
        self._db.executescript(_SCHEMA)

    @classmethod
    def open(cls, data_dir: str | os.PathLike[str], name: str, *, create: bool = False) -> CustomStore:
        directory = router_dir(data_dir, name)
        if not (directory / DB_FILE).exists():
            if not create:
                known = list_names(data_dir)
                raise UnknownNameError("custom router", name, known, param="name")
            directory.mkdir(parents=True, exist_ok=True)
        store = cls(directory, name)
        if create and store.get_meta("created") is None:
            store.set_meta("created", str(time.time()))
            store.set_meta("name", name)
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CustomStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def exclusive(self, what: str) -> Iterator[None]:
        """Hold the router's lock while ``what`` runs: two runs on one router would each take the other's
        in-flight requests for lost ones and buy them again. The OS drops the lock when a process dies."""
        import fcntl

        handle = (self.directory / ".lock").open("a+", encoding="utf-8")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another command"
                raise InvalidRequestError(
                    f"custom router {self.name!r} is busy: {holder} is running on it; wait for it to finish "
                    "(or stop it with Ctrl-C) and run this again"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"'{what}' (pid {os.getpid()})")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        finally:
            handle.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- meta -------------------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def endpoints(self) -> dict[str, str]:
        """{model: endpoint} of the candidates collected so far (or imported: endpoint may be empty)."""
        raw = self.get_meta("endpoints")
        return dict(json.loads(raw)) if raw else {}

    def add_endpoints(self, endpoints: dict[str, str]) -> None:
        current = self.endpoints()
        for model, endpoint in endpoints.items():
            old = current.get(model)
            if old and endpoint and old != endpoint:
                raise DataError(
                    f"model {model!r} was collected from {old} in custom router {self.name!r}; a router keeps "
                    f"one endpoint per model, so pass {old} (or start a new router with another --name)",
                    field="models",
                )
            if not old:
                current[model] = endpoint
        self.set_meta("endpoints", json.dumps(current, sort_keys=True))

    # --- prompts ----------------------------------------------------------------------------------------

    def add_prompts(self, prompts: Iterable[PromptRow]) -> int:
        """Add prompts not already stored (by id); returns how many were new. A known id with other text is
        an error (ids must be stable across reruns)."""
        added = 0
        with self._tx() as db:
            seq = int(db.execute("SELECT COALESCE(MAX(seq), -1) FROM prompts").fetchone()[0]) + 1
            for p in prompts:
                row = db.execute("SELECT text FROM prompts WHERE id = ?", (p.id,)).fetchone()
                if row is not None:
                    if row[0] != p.text:
                        raise DataError(
                            f"prompt id {p.id!r} is already stored with a different text; ids must not change "
                            "between runs (give each prompt its own id, or start a new router with --name)",
                            field="id",
                        )
                    if p.reference is not None or p.split is not None:
                        db.execute(
                            "UPDATE prompts SET reference = COALESCE(?, reference), split = COALESCE(?, split) "
                            "WHERE id = ?",
                            (p.reference, p.split, p.id),
                        )
                    continue
                db.execute(
                    "INSERT INTO prompts (id, seq, text, reference, split) VALUES (?, ?, ?, ?, ?)",
                    (p.id, seq, p.text, p.reference, p.split),
                )
                seq += 1
                added += 1
        return added

    def prompts(self) -> list[PromptRow]:
        rows = self._db.execute("SELECT id, text, reference, split FROM prompts ORDER BY seq").fetchall()
        return [PromptRow(r[0], r[1], r[2], r[3]) for r in rows]

    def set_reference(self, prompt_id: str, reference: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE prompts SET reference = ? WHERE id = ?", (reference, prompt_id))

    # --- in flight --------------------------------------------------------------------------------------

    def begin(self, kind: str, prompt_id: str, model: str, judge: str = "") -> None:
        """Mark a request as sent (committed before it goes out)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO in_flight (kind, prompt_id, model, judge, started) VALUES (?, ?, ?, ?, ?)",
                (kind, prompt_id, model, judge, time.time()),
            )

    def abandon(self, kind: str, prompt_id: str, model: str, judge: str = "") -> None:
        """The request failed without an answer: no longer in flight."""
        with self._tx() as db:
            db.execute(
                "DELETE FROM in_flight WHERE kind = ? AND prompt_id = ? AND model = ? AND judge = ?",
                (kind, prompt_id, model, judge),
            )

    def recover_lost(self, kind: str) -> list[tuple[str, str, str]]:
        """Requests of ``kind`` left in flight by a run that died: moved to ``lost`` and returned as
        (prompt_id, model, judge). Their answers were paid for (probably) and never stored."""
        now = time.time()
        with self._tx() as db:
            rows = db.execute(
                "SELECT prompt_id, model, judge, started FROM in_flight WHERE kind = ?", (kind,)
            ).fetchall()
            for r in rows:
                db.execute(
                    "INSERT INTO lost (kind, prompt_id, model, judge, started, noticed) VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, r[0], r[1], r[2], r[3], now),
                )
            db.execute("DELETE FROM in_flight WHERE kind = ?", (kind,))
        return [(r[0], r[1], r[2]) for r in rows]

    def lost(self, kind: str) -> list[tuple[str, str, str]]:
        rows = self._db.execute("SELECT prompt_id, model, judge FROM lost WHERE kind = ?", (kind,)).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    # --- answers ----------------------------------------------------------------------------------------

    def record_answer(self, answer: Answer, *, finish: str | None = None) -> None:
        """Store an answer and clear its in-flight mark and any earlier failure, in one transaction."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO answers (prompt_id, model, endpoint, text, input_tokens, output_tokens, "
                "output_chars, cost_usd, latency_s, finish, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    answer.prompt_id,
                    answer.model,
                    answer.endpoint,
                    answer.text,
                    answer.input_tokens,
                    answer.output_tokens,
                    None if answer.text is None else len(answer.text),
                    None if answer.cost_usd is None else str(answer.cost_usd),
                    answer.latency_s,
                    finish,
                    time.time(),
                ),
            )
            db.execute(
                "DELETE FROM in_flight WHERE kind = 'answer' AND prompt_id = ? AND model = ?",
                (answer.prompt_id, answer.model),
            )
            db.execute(
                "DELETE FROM failures WHERE kind = 'answer' AND prompt_id = ? AND model = ?",
                (answer.prompt_id, answer.model),
            )

    def import_answer(
        self, prompt_id: str, model: str, *, output_chars: int | None, cost_usd: float | None
    ) -> None:
        """What an imported record says about an answer it does not carry (its length and cost)."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO answers (prompt_id, model, endpoint, text, output_chars, cost_usd, created) "
                "VALUES (?, ?, NULL, NULL, ?, ?, ?)",
                (prompt_id, model, output_chars, None if cost_usd is None else repr(cost_usd), time.time()),
            )

    def record_failure(self, kind: str, prompt_id: str, model: str, error: str, judge: str = "") -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO failures (kind, prompt_id, model, judge, error, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (kind, prompt_id, model, judge, error, time.time()),
            )
            db.execute(
                "DELETE FROM in_flight WHERE kind = ? AND prompt_id = ? AND model = ? AND judge = ?",
                (kind, prompt_id, model, judge),
            )

    def failures(self, kind: str) -> list[tuple[str, str, str, str]]:
        rows = self._db.execute(
            "SELECT prompt_id, model, judge, error FROM failures WHERE kind = ? ORDER BY created", (kind,)
        ).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def answered(self) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in self._db.execute("SELECT prompt_id, model FROM answers")}

    def answers(self, *, with_text: bool = False) -> list[Answer]:
        query = (
            "SELECT prompt_id, model, endpoint, text, input_tokens, output_tokens, cost_usd, latency_s "
            "FROM answers"
        )
        if with_text:
            query += " WHERE text IS NOT NULL"
        out = []
        for r in self._db.execute(query + " ORDER BY created, prompt_id, model"):
            out.append(
                Answer(r[0], r[1], r[2], r[3], r[4], r[5], None if r[6] is None else Decimal(r[6]), r[7])
            )
        return out

    def answer_facts(self) -> dict[tuple[str, str], tuple[int | None, float | None]]:
        """{(prompt_id, model): (output_chars, cost_usd)} for every stored or imported answer."""
        rows = self._db.execute("SELECT prompt_id, model, output_chars, cost_usd FROM answers")
        return {(r[0], r[1]): (r[2], None if r[3] is None else float(Decimal(r[3]))) for r in rows}

    def spent_usd(self) -> Decimal:
        total = Decimal(0)
        for (value,) in self._db.execute("SELECT cost_usd FROM answers WHERE endpoint IS NOT NULL"):
            if value is not None:
                total += Decimal(value)
        for (value,) in self._db.execute("SELECT cost_usd FROM grades WHERE cost_usd IS NOT NULL"):
            total += Decimal(value)
        return total

    # --- grades -----------------------------------------------------------------------------------------

    def record_grade(
        self,
        prompt_id: str,
        model: str,
        judge: str,
        *,
        grade: float | None,
        explanation: str | None,
        raw: str | None,
        tries: int,
        cost_usd: Decimal | None,
    ) -> None:
        """A grade 1..10 (score = grade / 10), or ``grade=None``: recorded as missing, never as zero."""
        status = "missing" if grade is None else "ok"
        score = None if grade is None else grade / 10.0
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO grades (prompt_id, model, judge, grade, score, status, explanation, raw, "
                "tries, cost_usd, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    prompt_id,
                    model,
                    judge,
                    grade,
                    score,
                    status,
                    explanation,
                    raw,
                    tries,
                    None if cost_usd is None else str(cost_usd),
                    time.time(),
                ),
            )
            db.execute(
                "DELETE FROM in_flight WHERE kind = 'judge' AND prompt_id = ? AND model = ? AND judge = ?",
                (prompt_id, model, judge),
            )
            db.execute(
                "DELETE FROM failures WHERE kind = 'judge' AND prompt_id = ? AND model = ? AND judge = ?",
                (prompt_id, model, judge),
            )

    def import_score(self, prompt_id: str, model: str, score: float, source: str) -> None:
        """An already-known 0..1 score (``custom import``), stored as a grade of judge ``import``."""
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO grades (prompt_id, model, judge, grade, score, status, explanation, raw, "
                "tries, cost_usd, created) VALUES (?, ?, 'import', ?, ?, 'ok', ?, NULL, 0, NULL, ?)",
                (prompt_id, model, score * 10.0, score, f"imported from {source}", time.time()),
            )

    def graded(self, judge: str) -> set[tuple[str, str]]:
        rows = self._db.execute("SELECT prompt_id, model FROM grades WHERE judge = ?", (judge,))
        return {(r[0], r[1]) for r in rows}

    def grades(self, judge: str | None = None) -> list[Grade]:
        query = "SELECT prompt_id, model, judge, grade, score, status FROM grades"
        args: Sequence[str] = ()
        if judge is not None:
            query += " WHERE judge = ?"
            args = (judge,)
        return [Grade(r[0], r[1], r[2], r[3], r[4], r[5]) for r in self._db.execute(query, args)]

    def judges(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT judge FROM grades ORDER BY judge")]

    # --- summary ----------------------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        one = self._db.execute
        return {
            "prompts": int(one("SELECT COUNT(*) FROM prompts").fetchone()[0]),
            "answers": int(one("SELECT COUNT(*) FROM answers").fetchone()[0]),
            "grades": int(one("SELECT COUNT(*) FROM grades WHERE status = 'ok'").fetchone()[0]),
            "missing": int(one("SELECT COUNT(*) FROM grades WHERE status = 'missing'").fetchone()[0]),
            "failed_answers": int(one("SELECT COUNT(*) FROM failures WHERE kind = 'answer'").fetchone()[0]),
            "failed_grades": int(one("SELECT COUNT(*) FROM failures WHERE kind = 'judge'").fetchone()[0]),
            "lost": int(one("SELECT COUNT(*) FROM lost").fetchone()[0]),
        }


def list_names(data_dir: str | os.PathLike[str]) -> list[str]:
    root = custom_root(data_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / DB_FILE).exists())
