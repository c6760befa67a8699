"""Helpers for the custom-router tests: the fake provider with "persona" models whose answers depend on the
prompt (one of them bad at SQL), a deterministic fake judge, a tiny base checkpoint and the catalogue config.

The personas ride on the real fake provider server (``pointsman.providers.fake``): requests for a persona
model are answered here, everything else (scripted faults) by the server itself. Every request for a persona
is counted per (model, prompt text) in ``PersonaServer.counts`` — the "was anything sent twice" ledger.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pointsman.providers.fake import FakeProviderServer, _count_tokens, _OpenAI

WORDS = ["orders", "customers", "invoices", "products", "shipments", "suppliers", "refunds", "payments"]
FRENCH = ["the cat", "a red house", "good morning", "the train is late", "my friend", "a cold winter"]


def strong(prompt: str) -> str:
    return f"CORRECT: a careful answer to {prompt!r}"


def cheap(prompt: str) -> str:
    if "SQL" in prompt:
        return "WRONG: SELECT something FROM somewhere"  # bad at the SQL family
    return f"CORRECT: a short answer to {prompt!r}"


def judge(prompt: str) -> str:
    """Grades deterministically from the answer inside the rubric: 2 for a wrong answer, 9 otherwise."""
    if "WRONG" in prompt:
        return "The answer is incorrect for the question asked.\nRating: [[2]]"
    return "The answer is correct and clear.\nRating: [[9]]"


def mumbler(prompt: str) -> str:
    return "I would rather not say."


PERSONAS: dict[str, Callable[[str], str]] = {
    "strong": strong,
    "cheap": cheap,
    "judge": judge,
    "mumbler": mumbler,
}


class PersonaServer(FakeProviderServer):
    """The fake provider, plus persona models (OpenAI chat completions, non-streaming)."""

    def __init__(self, personas: dict[str, Callable[[str], str]], *, delay_s: float = 0.0) -> None:
        super().__init__()
        self.personas = personas
        self.delay_s = delay_s
        self.counts: Counter[tuple[str, str]] = Counter()

    async def _route(self, conn: Any, method: str, path: str, headers: dict[str, str], raw: bytes) -> None:
        if method == "POST" and path == "/v1/chat/completions":
            body = json.loads(raw)
            persona = self.personas.get(str(body.get("model")))
            if persona is not None:
                text = str(body["messages"][-1]["content"])
                self.counts[(str(body["model"]), text)] += 1
                if self.delay_s:
                    await asyncio.sleep(self.delay_s)
                answer = persona(text)
                usage = (_count_tokens(body), max(1, len(answer) // 4))
                await conn.json(200, _OpenAI().reply(str(body["model"]), answer, "stop", usage))
                return
        await super()._route(conn, method, path, headers, raw)


@contextmanager
def running_personas(*, delay_s: float = 0.0) -> Iterator[PersonaServer]:
    """A persona server on loopback in a background thread."""
    server = PersonaServer(PERSONAS, delay_s=delay_s)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(server.close())
        loop.close()

    thread = threading.Thread(target=run, name="persona-fake", daemon=True)
    thread.start()
    assert ready.wait(10), "the persona server did not start"
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def config_toml(base_url: str) -> str:
    """A user config adding provider ``fake`` with the persona endpoints (and a scripted-fault one)."""
    endpoints = {
        "strong-model@fake": ("strong", 10.0, 30.0),
        "cheap-model@fake": ("cheap", 0.1, 0.1),
        "judge-model@fake": ("judge", 1.0, 1.0),
        "mumbler-model@fake": ("mumbler", 1.0, 1.0),
        "flaky-model@fake": ("fake-model#fault=429&fail_first=1&retry_after=0", 1.0, 1.0),
        "broken-model@fake": ("fake-model#fault=500", 1.0, 1.0),
    }
    lines = [
        "[catalog.providers.fake]",
        f'base_url = "{base_url}"',
        "ttft_prior_ms = 50",
        "itl_prior_ms = 5",
        "",
    ]
    for name, (upstream, price_in, price_out) in endpoints.items():
        model = name.split("@")[0]
        lines += [f'[catalog.models."{model}"]', "context_window = 8192", ""]
        lines += [
            f'[catalog.endpoints."{name}"]',
            f'upstream_model = "{upstream}"',
            f"input_usd_per_mtok = {price_in}",
            f"output_usd_per_mtok = {price_out}",
            "price_as_of = 2026-01-01",
            "",
        ]
    return "\n".join(lines)


def prompts(n: int, *, seed: int = 0) -> list[dict[str, str]]:
    """Half SQL questions (the family the cheap model is bad at), half translations."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 2 == 0:
            a, b = rng.sample(WORDS, 2)
            text = f"Write an SQL query that joins {a} with {b} and counts rows #{i}"
        else:
            text = f"Translate into French: {rng.choice(FRENCH)} and {rng.choice(FRENCH)} #{i}"
        out.append({"id": f"q{i:03d}", "prompt": text})
    return out


def write_prompts(path: Path, n: int) -> Path:
    path.write_text("\n".join(json.dumps(p) for p in prompts(n)) + "\n", encoding="utf-8")
    return path


def tiny_base_checkpoint(root: Path) -> Path:
    """A small, untrained-on-these-models base scorer over the tiny random encoder (see _scorer_tiny)."""
    import torch
    from _scorer_tiny import tiny_encoder_dir

    from pointsman.scorer.checkpoint import save_model
    from pointsman.scorer.model import LatentScorer, ModelConfig

    out = root / "base"
    if (out / "config.json").exists():
        return out
    torch.manual_seed(0)
    cfg = ModelConfig(
        models=["old-a", "old-b"],
        sources=["arena"],
        default_source="arena",
        encoder=tiny_encoder_dir(str(root)),
        max_tokens=64,
        n_embd=32,
        d_model=32,
        n_layer=1,
        n_head=2,
        dropout=0.0,
    )
    return save_model(LatentScorer(cfg), out, meta={"purpose": "custom-router tests"})
