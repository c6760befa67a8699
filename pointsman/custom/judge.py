"""``custom judge``: grade every stored answer with an LLM judge, 1..10 with an explanation.

Single-answer grading: the judge sees the question, the answer and, when given, a reference answer — never
which model wrote it. The rubric is a text template with ``{question}``, ``{answer}`` and ``{reference}``
(optional) that a user can replace with ``--rubric FILE``; placeholders are replaced literally, so a rubric
may contain other braces (JSON examples) freely.

Verdicts are parsed leniently (``[[8]]``, ``Rating: 8``, ``Score: 7.5/10``, ``8 out of 10``, a JSON object with
``grade``/``score``/``rating``, a bare number). An unparseable verdict is asked for once more; if the second is
unparseable too, the grade is recorded as *missing* — never as a zero, which would teach the router that the
model failed. Grades are stored as the 1..10 grade and a 0..1 score (grade / 10, the scale of the public
GPT-4-judge data the shipped scorer predicts).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from pointsman.catalog import Endpoint
from pointsman.custom.calls import Caller, describe_error, run_pool
from pointsman.custom.store import Answer, CustomStore
from pointsman.errors import DataError, PointsmanError

__all__ = [
    "DEFAULT_RUBRIC",
    "JudgeOutcome",
    "JudgePlan",
    "judge_answers",
    "load_rubric",
    "parse_grade",
    "plan_judging",
    "read_references",
    "render_rubric",
]

DEFAULT_RUBRIC = """\
Please act as a fair and careful evaluator. Judge the answer an AI assistant gave to the user question below.
Weigh correctness first, then helpfulness, relevance, depth and clarity; length alone earns nothing.
{reference_instruction}
Write a short explanation of your judgement (two to four sentences), then on the last line give a grade
from 1 (useless or wrong) to 10 (excellent), strictly in this format: Rating: [[N]]

[Question]
{question}
{reference_block}
[The assistant's answer]
{answer}
[End of the assistant's answer]
"""

_REFERENCE_INSTRUCTION = "A reference answer is given: an answer that contradicts it on facts or results is wrong, whatever its style."

MIN_GRADE, MAX_GRADE = 1.0, 10.0
_NUM = r"(\d{1,2}(?:\.\d+)?)(?![\d])"
_PATTERNS = (
    re.compile(r"\[\[\s*" + _NUM + r"\s*(?:/\s*10)?\s*\]\]"),
    re.compile(
        r"(?:rating|grade|score|verdict)\s*[:=]?\s*\**\s*" + _NUM + r"(?:\s*(?:/|out of)\s*10)?", re.I
    ),
    re.compile(_NUM + r"\s*(?:/|out of)\s*10\b", re.I),
)

_LABEL_TAIL = re.compile(r"(?:rating|grade|score|verdict)?\s*[:=]?\s*\**\s*$", re.I)


def parse_grade(text: str) -> tuple[float | None, str]:
    """(grade 1..10 or None when no grade can be read, the explanation). The last grade-looking match of the
    most specific pattern wins (judges restate the scale before giving the verdict)."""
    text = text or ""
    for pattern in _PATTERNS:
        matches = list(pattern.finditer(text))
        if matches:
            last = matches[-1]
            value = float(last.group(1))
            if MIN_GRADE <= value <= MAX_GRADE:
                before = _LABEL_TAIL.sub("", text[: last.start()]).strip()
                return value, before or text.strip()
            return None, text.strip()
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            for key in ("grade", "rating", "score"):
                found = obj.get(key)
                if isinstance(found, int | float) and not isinstance(found, bool):
                    if MIN_GRADE <= float(found) <= MAX_GRADE:
                        return float(found), str(obj.get("explanation", ""))
                    return None, stripped
    if re.fullmatch(_NUM, stripped):
        value = float(stripped)
        if MIN_GRADE <= value <= MAX_GRADE:
            return value, ""
    return None, stripped


def load_rubric(path: str | Path | None) -> str:
    """The default rubric, or a user's template (must contain ``{question}`` and ``{answer}``)."""
    if path is None:
        return DEFAULT_RUBRIC
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DataError(
            "no such rubric file; give a text file with {question} and {answer}", path=str(p)
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the rubric ({exc})", path=str(p)) from exc
    missing = [k for k in ("{question}", "{answer}") if k not in text]
    if missing:
        raise DataError(
            f"the rubric lacks {' and '.join(missing)}; a rubric is a template where {{question}} and {{answer}} "
            "(and optionally {reference}) are replaced by the prompt, the answer and the reference answer",
            path=str(p),
        )
    return text


def render_rubric(rubric: str, question: str, answer: str, reference: str | None) -> str:
    """The judge's prompt. Placeholders are replaced literally (other braces are left alone)."""
    if rubric is DEFAULT_RUBRIC or rubric == DEFAULT_RUBRIC:
        block = f"\n[Reference answer]\n{reference}\n[End of the reference answer]\n" if reference else ""
        instruction = _REFERENCE_INSTRUCTION if reference else ""
        rubric = rubric.replace("{reference_instruction}", instruction).replace("{reference_block}", block)
    out = rubric.replace("{reference}", reference or "(no reference answer)")
    # The answer goes in last, so text inside it that looks like a placeholder is not replaced.
    return out.replace("{question}", question).replace("{answer}", answer)


def rubric_id(rubric: str) -> str:
    return hashlib.sha256(rubric.encode("utf-8")).hexdigest()[:12]


def read_references(path: str | Path, store: CustomStore) -> int:
    """Attach reference answers from a ``.jsonl``/``.csv`` file with ``reference`` and ``id`` (or ``prompt``)
    columns; returns how many prompts got one. Unknown ids/prompts are errors (a typo must not silently
    drop references)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(
            "no such reference file; give a .jsonl or .csv with 'id' (or 'prompt') and 'reference'",
            path=str(p),
        )
    text = p.read_text(encoding="utf-8")
    rows: list[tuple[int, dict[str, object]]] = []
    if p.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        rows = [(reader.line_num, dict(r)) for r in reader]
    else:
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"not valid JSON ({exc.msg})", path=str(p), line=n) from exc
                if not isinstance(obj, dict):
                    raise DataError("expected a JSON object", path=str(p), line=n)
                rows.append((n, obj))
    prompts = store.prompts()
    by_id = {q.id: q for q in prompts}
    by_text = {q.text: q for q in prompts}
    count = 0
    for n, row in rows:
        ref = row.get("reference")
        if not isinstance(ref, str) or not ref.strip():
            raise DataError("expected a non-empty 'reference' string", path=str(p), line=n, field="reference")
        key = row.get("id")
        target = by_id.get(str(key)) if key not in (None, "") else by_text.get(str(row.get("prompt", "")))
        if target is None:
            raise DataError(
                f"no stored prompt with id {key!r}"
                if key not in (None, "")
                else "no stored prompt with this text",
                path=str(p),
                line=n,
                field="id" if key not in (None, "") else "prompt",
            )
        store.set_reference(target.id, ref)
        count += 1
    return count


@dataclass(frozen=True)
class JudgePlan:
    pairs: list[Answer]  # answers still to grade
    done: int
    lost: list[tuple[str, str, str]]


def plan_judging(store: CustomStore, judge: str) -> JudgePlan:
    lost = [x for x in store.recover_lost("judge")]
    graded = store.graded(judge)
    pending = [a for a in store.answers(with_text=True) if (a.prompt_id, a.model) not in graded]
    return JudgePlan(pending, len(graded), lost)


@dataclass
class JudgeOutcome:
    sent: int = 0
    graded: int = 0
    missing: int = 0
    failed: int = 0
    retried_unparseable: int = 0
    spent_usd: Decimal = Decimal(0)
    errors: list[str] = field(default_factory=list)
    stopped: bool = False


async def judge_answers(
    store: CustomStore,
    plan: JudgePlan,
    judge: Endpoint,
    *,
    rubric: str = DEFAULT_RUBRIC,
    max_tokens: int = 512,
    concurrency: int = 4,
    retries: int = 3,
    stop: asyncio.Event | None = None,
    on_result: Callable[[str, Decimal], None] | None = None,
) -> JudgeOutcome:
    """Grade ``plan.pairs`` with ``judge``; ``on_result(status, cost)`` with status ok/missing/failed."""
    stop = stop or asyncio.Event()
    outcome = JudgeOutcome()
    prompts = {p.id: p for p in store.prompts()}

    async with Caller(retries=retries, concurrency=concurrency) as caller:
        caller.upstream(judge)

        async def work(answer: Answer) -> None:
            prompt = prompts[answer.prompt_id]
            body = {
                "messages": [
                    {
                        "role": "user",
                        "content": render_rubric(rubric, prompt.text, answer.text or "", prompt.reference),
                    }
                ],
                "max_tokens": max_tokens,
                "temperature": 0,
            }
            store.begin("judge", answer.prompt_id, answer.model, judge.name)
            cost = Decimal(0)
            grade: float | None = None
            explanation, raw = "", ""
            tries = 0
            try:
                for _ in range(2):  # an unparseable verdict is asked for once more
                    tries += 1
                    outcome.sent += 1
                    reply = await caller.chat(judge, body)
                    cost += reply.cost_usd
                    raw = reply.text
                    grade, explanation = parse_grade(raw)
                    if grade is not None:
                        break
                    if tries == 1:
                        outcome.retried_unparseable += 1
            except PointsmanError as exc:
                store.record_failure("judge", answer.prompt_id, answer.model, describe_error(exc), judge.name)
                outcome.failed += 1
                outcome.spent_usd += cost
                if len(outcome.errors) < 5:
                    outcome.errors.append(f"{judge.name}: {describe_error(exc)}")
                if on_result:
                    on_result("failed", cost)
                return
            store.record_grade(
                answer.prompt_id,
                answer.model,
                judge.name,
                grade=grade,
                explanation=explanation,
                raw=raw,
                tries=tries,
                cost_usd=cost,
            )
            outcome.spent_usd += cost
            if grade is None:
                outcome.missing += 1
            else:
                outcome.graded += 1
            if on_result:
                on_result("ok" if grade is not None else "missing", cost)

        await run_pool(plan.pairs, work, concurrency=concurrency, stop=stop)
    outcome.stopped = stop.is_set()
    return outcome
