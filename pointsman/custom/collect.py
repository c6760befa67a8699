"""``custom collect``: send every prompt to every candidate endpoint and store each answer as it arrives.

Prompts files: ``.jsonl`` (one object a line: ``prompt`` required, ``id`` and ``reference`` optional), ``.csv``
(a ``prompt`` column; ``id`` and ``reference`` optional) or plain text (one prompt a line). A prompt without an
id gets one from its text, so the same file given again names the same prompts.

Resumable: pairs already answered are never sent again; a pair whose request was in flight when a run died is
reported (its answer was lost) and sent again; pairs that failed (after the engine's retries) are retried.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from pointsman.catalog import Endpoint
from pointsman.custom.calls import Caller, describe_error, run_pool
from pointsman.custom.store import Answer, CustomStore, PromptRow
from pointsman.errors import DataError, PointsmanError
from pointsman.tokens import count_message_tokens

__all__ = [
    "CollectOutcome",
    "CollectPlan",
    "collect_answers",
    "plan_collection",
    "prompt_id",
    "read_prompts",
]


def prompt_id(text: str) -> str:
    """A stable id for a prompt given without one."""
    return "p-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_prompts(path: str | Path) -> list[PromptRow]:
    """Read a prompts file (see the module docstring); errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise DataError("no such prompts file; give a .jsonl, .csv or .txt file of prompts", path=str(p))
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the prompts file ({exc})", path=str(p)) from exc
    rows: list[PromptRow] = []
    if p.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"not valid JSON ({exc.msg})", path=str(p), line=number) from exc
            if (
                not isinstance(obj, dict)
                or not isinstance(obj.get("prompt"), str)
                or not obj["prompt"].strip()
            ):
                raise DataError(
                    'expected an object with a non-empty "prompt" string',
                    path=str(p),
                    line=number,
                    field="prompt",
                )
            rows.append(_row(obj, str(p), number))
    elif p.suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        if reader.fieldnames is None or "prompt" not in reader.fieldnames:
            raise DataError(
                "the CSV needs a 'prompt' column (and optionally 'id', 'reference')", path=str(p), line=1
            )
        for rec in reader:
            number = reader.line_num  # the physical line (blank lines are skipped)
            if not (rec.get("prompt") or "").strip():
                raise DataError("empty prompt", path=str(p), line=number, field="prompt")
            rows.append(_row(dict(rec), str(p), number))
    else:
        for line in text.splitlines():
            if line.strip():
                rows.append(PromptRow(prompt_id(line), line))
    if not rows:
        raise DataError("the prompts file holds no prompts", path=str(p))
    seen: dict[str, str] = {}
    for r in rows:
        if r.id in seen and seen[r.id] != r.text:
            raise DataError(f"id {r.id!r} is used for two different prompts", path=str(p), field="id")
        seen[r.id] = r.text
    return list({r.id: r for r in rows}.values())


def _row(obj: dict[str, object], path: str, line: int) -> PromptRow:
    text = str(obj["prompt"])
    raw_id = obj.get("id")
    if raw_id not in (None, "") and not isinstance(raw_id, str | int):
        raise DataError("id must be a string or a number", path=path, line=line, field="id")
    ref = obj.get("reference")
    if ref not in (None, "") and not isinstance(ref, str):
        raise DataError("reference must be a string", path=path, line=line, field="reference")
    return PromptRow(
        str(raw_id) if raw_id not in (None, "") else prompt_id(text), text, str(ref) if ref else None
    )


def chat_body(text: str, max_tokens: int, temperature: float | None) -> dict[str, object]:
    body: dict[str, object] = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
    if temperature is not None:
        body["temperature"] = temperature
    return body


@dataclass(frozen=True)
class CollectPlan:
    """What a run will send and what it may cost."""

    pairs: list[tuple[PromptRow, Endpoint]]  # still to answer
    done: int  # already answered
    lost: list[tuple[str, str, str]]  # (prompt, model, _) in flight when a previous run died: sent again
    expected_usd: Decimal  # at the expected answer length
    max_usd: Decimal  # if every answer used all of max_tokens
    expected_output_tokens: int


def plan_collection(
    store: CustomStore, endpoints: dict[str, Endpoint], *, max_tokens: int, expected_output_tokens: int = 256
) -> CollectPlan:
    """The pairs still to answer and the estimated cost (list prices; prompt tokens estimated high)."""
    lost = store.recover_lost("answer")
    answered = store.answered()
    pairs = []
    expected = Decimal(0)
    upper = Decimal(0)
    typical = min(max_tokens, expected_output_tokens)
    for p in store.prompts():
        tokens_in = count_message_tokens([{"role": "user", "content": p.text}])
        for model, endpoint in sorted(endpoints.items()):
            if (p.id, model) in answered:
                continue
            pairs.append((p, endpoint))
            expected += endpoint.cost_usd(tokens_in, typical)
            upper += endpoint.cost_usd(tokens_in, max_tokens)
    done = sum(1 for (_, m) in answered if m in endpoints)
    return CollectPlan(pairs, done, lost, expected, upper, typical)


@dataclass
class CollectOutcome:
    sent: int = 0
    answered: int = 0
    failed: int = 0
    spent_usd: Decimal = Decimal(0)
    errors: list[str] = field(default_factory=list)  # the first few, for the summary
    stopped: bool = False


async def collect_answers(
    store: CustomStore,
    plan: CollectPlan,
    *,
    max_tokens: int,
    temperature: float | None = None,
    concurrency: int = 8,
    retries: int = 3,
    stop: asyncio.Event | None = None,
    on_result: Callable[[bool, Decimal], None] | None = None,
) -> CollectOutcome:
    """Send ``plan.pairs``; each answer is committed as it arrives (``on_result(ok, cost)`` after each)."""
    stop = stop or asyncio.Event()
    outcome = CollectOutcome()

    async with Caller(retries=retries, concurrency=concurrency) as caller:
        for endpoint in {e.name: e for _, e in plan.pairs}.values():
            caller.upstream(endpoint)  # a missing API key is an error before anything is sent

        async def work(pair: tuple[PromptRow, Endpoint]) -> None:
            prompt, endpoint = pair
            store.begin("answer", prompt.id, endpoint.model)
            outcome.sent += 1
            try:
                reply = await caller.chat(endpoint, chat_body(prompt.text, max_tokens, temperature))
            except PointsmanError as exc:
                store.record_failure("answer", prompt.id, endpoint.model, describe_error(exc))
                outcome.failed += 1
                if len(outcome.errors) < 5:
                    outcome.errors.append(f"{endpoint.name}: {describe_error(exc)}")
                if on_result:
                    on_result(False, Decimal(0))
                return
            store.record_answer(
                Answer(
                    prompt.id,
                    endpoint.model,
                    endpoint.name,
                    reply.text,
                    reply.input_tokens,
                    reply.output_tokens,
                    reply.cost_usd,
                    reply.latency_s,
                ),
                finish=reply.finish,
            )
            outcome.answered += 1
            outcome.spent_usd += reply.cost_usd
            if on_result:
                on_result(True, reply.cost_usd)

        await run_pool(plan.pairs, work, concurrency=concurrency, stop=stop)
    outcome.stopped = stop.is_set()
    return outcome
