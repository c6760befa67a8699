"""A whole gateway for the console tests: a real server on loopback with the SQLite ledger, a fake provider
answering as several endpoints with known TTFT/ITL, real benchmark runs in two regions, an evaluation report
written by the real harness, and requests from two accounts through the real ``openai`` client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import openai
from sqlalchemy import Engine

from pointsman.catalog import Catalog
from pointsman.gateway.app import create_app
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import fake_catalog, running_gateway
from pointsman.ledger.ledger import Ledger
from pointsman.providers.fake import FakeProviderServer, running_fake_provider
from pointsman.settings import Settings
from pointsman.stats.settings import StatsSettings

FIXTURES = Path(__file__).parent / "fixtures"

# endpoint -> the fake provider's script: known latency per endpoint, one that always fails
ENDPOINTS = {
    "fast@fake": "fake-model#ttft_ms=20&itl_ms=2&tokens=6&tag=fast",
    "slow@fake": "fake-model#ttft_ms=150&itl_ms=10&tokens=6&tag=slow",
    "cheap@other": "fake-model#tokens=4&tag=cheap",
    "broken@fake": "fake-model#fault=500&tag=broken",
}
PRICES = {
    "fast@fake": (1.0, 2.0),
    "slow@fake": (3.0, 6.0),
    "cheap@other": (0.1, 0.2),
    "broken@fake": (1.0, 1.0),
}
ALICE_PROMPT = "SECRET-PROMPT-ALICE: what is the capital of Peru?"
BOB_PROMPT = "SECRET-PROMPT-BOB: write a haiku about tax returns"


@dataclass
class ConsoleStack:
    url: str  # http://127.0.0.1:PORT (the console is at /console)
    alice: str  # API keys
    bob: str
    admin: str
    fake: FakeProviderServer
    report_dir: Path
    ledger: Ledger  # the gateway's own ledger (same database)

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, trust_env=False)


def write_eval_report(out: Path) -> None:
    """A real ``pointsman eval`` report on the fixture data (the active scorer "prior" among the routers)."""
    from pointsman.evaluation.costs import load_prices
    from pointsman.evaluation.harness import EvalOptions, evaluate_files
    from pointsman.evaluation.report import write_report

    (result,) = evaluate_files(
        [FIXTURES / "eval_routing.jsonl"],
        prices=load_prices([FIXTURES / "eval_prices.json"]),
        prices_origin="fixture",
        options=EvalOptions(routers=["random", "best-single", "prior"], bootstrap=0, folds=2),
    )
    write_report([result], out, {"command": "pointsman eval --data eval_routing.jsonl"}, plots=False)


def run_benchmarks(engine: Engine, catalog: Catalog) -> None:
    """Two benchmark runs in eu-west (fast, slow, broken) and one in us-east (fast only)."""
    from pointsman.stats.bench import BenchConfig, plan_benchmark, run_benchmark
    from pointsman.stats.store import StatsStore

    store = StatsStore(engine)
    runs = [
        ("eu-west", ["fast@fake", "slow@fake", "broken@fake"]),
        ("eu-west", ["fast@fake", "slow@fake", "broken@fake"]),
        ("us-east", ["fast@fake"]),
    ]
    for region, endpoints in runs:
        config = BenchConfig(
            endpoints=endpoints,
            region=region,
            prompts=("short",),
            repeats=2,
            concurrency=4,
            max_tokens=8,
            budget_usd=Decimal("1"),
        )
        asyncio.run(run_benchmark(plan_benchmark(catalog, config), store))


def _wait_for_settlements(ledger: Ledger, account_id: int, expected: int) -> None:
    """Streams settle just after the client has read [DONE]; wait (briefly) until every request is charged."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        settled = sum(1 for e in ledger.history(account_id, limit=500) if e.kind == "settle")
        if settled >= expected and ledger.open_reservations(account_id) == 0:
            return
        time.sleep(0.02)
    raise TimeoutError(f"{expected} requests were not settled within 10 s")


def _wait_for_traffic_sample(engine: Engine, endpoint: str) -> None:
    """The telemetry writes in batches every few milliseconds here; wait until the stream's sample is stored."""
    from pointsman.stats.store import StatsStore

    store = StatsStore(engine)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if store.samples(endpoints=[endpoint], source="traffic"):
            return
        time.sleep(0.02)
    raise TimeoutError(f"no traffic sample for {endpoint} within 10 s")


@contextlib.contextmanager
def console_stack(tmp: Path, *, benchmarks: bool = True, report: bool = True) -> Iterator[ConsoleStack]:
    report_dir = tmp / "eval-report"
    if report:
        write_eval_report(report_dir)
    config = tmp / "config.toml"
    # The prior is the active scorer here (the report evaluates it; the shipped default is the neural one).
    config.write_text(
        '[console]\nreports = ["eval-report"]\n[routing]\ndefault_router = "router@prior|q:1|c:0.01|t:2e-05|i:0.002"\n',
        encoding="utf-8",
    )
    settings = Settings(
        data_dir=tmp / "data", database_url=f"sqlite:///{tmp}/pointsman.db", config_file=config
    )
    with running_fake_provider() as fake:
        catalog = fake_catalog(fake.base_url, ENDPOINTS, prices=PRICES)
        # Passive telemetry on: routed streams add "traffic" samples beside the benchmark runs.
        stats = StatsSettings(region="eu-west", telemetry_flush_s=0.05, schedule=False, refresh_s=0.1)
        app = create_app(
            settings,
            gateway_settings=GatewaySettings(billing="ledger", retries=0),
            catalog=catalog,
            stats=stats,
        )
        with running_gateway(app) as v1:
            billing = app.state.gateway.billing
            alice = billing.keys.create("alice", credit_usd="5").key
            bob = billing.keys.create("bob", credit_usd="7").key
            admin = billing.keys.create("operator", admin=True, credit_usd="0").key
            if benchmarks:
                run_benchmarks(billing.ledger.engine, catalog)
            as_alice = openai.OpenAI(base_url=v1, api_key=alice, max_retries=0)
            as_alice.chat.completions.create(
                model="fast@fake", messages=[{"role": "user", "content": ALICE_PROMPT}]
            )
            as_alice.chat.completions.create(
                model="fast@fake", messages=[{"role": "user", "content": ALICE_PROMPT}]
            )
            list(
                as_alice.chat.completions.create(
                    model="cheap@other", messages=[{"role": "user", "content": ALICE_PROMPT}], stream=True
                )
            )
            as_bob = openai.OpenAI(base_url=v1, api_key=bob, max_retries=0)
            as_bob.chat.completions.create(
                model="slow@fake", messages=[{"role": "user", "content": BOB_PROMPT}]
            )
            ledger = billing.ledger
            _wait_for_traffic_sample(ledger.engine, "cheap@other")
            _wait_for_settlements(ledger, ledger.account("alice").id, 3)
            _wait_for_settlements(ledger, ledger.account("bob").id, 1)
            yield ConsoleStack(v1.removesuffix("/v1"), alice, bob, admin, fake, report_dir, ledger)
