"""End to end with real processes: ``pointsman serve`` gateways (subprocesses) sharing one database, the fake
provider on loopback, the real ``openai`` client.

- 200 requests released at once against a key funded for about 10: two gateways on the real PostgreSQL, one on
  SQLite. Total charged <= the balance, the balance never negative, the ledger = reported usage x price exactly.
- Crash safety: a gateway killed (SIGKILL) mid-request leaves a reservation that the next gateway's sweeper
  expires, returning the hold.
- Canary: DEBUG logging everywhere; no account, admin or provider key appears in stdout, stderr or a DB dump.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from pointsman.db import create_db_engine, upgrade
from pointsman.gateway.testing import free_port
from pointsman.ledger import KeyStore, Ledger, LedgerConfig, Price
from pointsman.ledger.money import request_cost_pico
from pointsman.ledger.testing import postgres_available, temporary_postgres_schema
from pointsman.providers.fake import FakeConfig, running_fake_provider
from pointsman.tokens import count_message_tokens

pytestmark = pytest.mark.slow

PRICES = {
    "m1@fake": (Decimal("3"), Decimal("15")),
    "m2@fake": (Decimal("0.5"), Decimal("1.5")),
    "bad@fake": (Decimal("4"), Decimal("16")),
    "slow@fake": (Decimal("1"), Decimal("2")),
}
UPSTREAM = {
    "m1@fake": "fake-model#tokens=37",
    "m2@fake": "fake-model#tokens=23",
    "bad@fake": "fake-model#fault=503",
    "slow@fake": "fake-model#fault=slow_first_byte&delay_ms=60000",
}
MODELS = ("m1@fake", "m2@fake", "bad@fake->m2@fake")
MESSAGES = [{"role": "user", "content": "What is the largest of 3, 9 and 4?"}]
MAX_TOKENS = 64

# Runs the real CLI entry point with DEBUG logging on the root logger (uvicorn only configures its own).
LAUNCH = (
    "import logging, sys\n"
    "logging.basicConfig(level=logging.DEBUG, format='%(levelname)s %(name)s %(message)s')\n"
    "from pointsman.cli import main\n"
    "sys.argv = ['pointsman', *sys.argv[1:]]\n"
    "main()\n"
)


def write_config(path: Path, fake_url: str) -> Path:
    lines = [
        "[gateway]",
        "retries = 0",
        "backoff_base_s = 0",
        "",
        "[catalog.providers.fake]",
        f'base_url = "{fake_url}"',
        'api_key_env = "FAKE_PROVIDER_KEY"',
        "ttft_prior_ms = 50",
        "itl_prior_ms = 5",
    ]
    for endpoint, upstream in UPSTREAM.items():
        model = endpoint.partition("@")[0]
        price_in, price_out = PRICES[endpoint]
        lines += [
            "",
            f'[catalog.models."{model}"]',
            "context_window = 32768",
            "",
            f'[catalog.endpoints."{endpoint}"]',
            f'upstream_model = "{upstream}"',
            f"input_usd_per_mtok = {price_in}",
            f"output_usd_per_mtok = {price_out}",
            "price_as_of = 2026-01-01",
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    base_url: str
    stdout: Path
    stderr: Path

    def logs(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def _spawn(config: Path, env: dict[str, str], workdir: Path) -> Gateway:
    port = free_port()
    tag = uuid.uuid4().hex[:6]
    stdout, stderr = workdir / f"gateway-{tag}.out", workdir / f"gateway-{tag}.err"
    args = ["serve", "--port", str(port), "--config", str(config), "--access-log", "--no-stats"]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCH, *args], env=env, stdout=out, stderr=err)
    return Gateway(proc, f"http://127.0.0.1:{port}/v1", stdout, stderr)


def _wait_ready(gateway: Gateway) -> None:
    deadline = time.monotonic() + 90
    health = gateway.base_url.removesuffix("/v1") + "/healthz"
    while True:
        if gateway.proc.poll() is not None:
            raise RuntimeError(
                f"the gateway exited with {gateway.proc.returncode}:\n{gateway.logs()[-3000:]}"
            )
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gateway did not start:\n{gateway.logs()[-3000:]}")
        time.sleep(0.1)


def _stop(gateway: Gateway) -> None:
    if gateway.proc.poll() is None:
        gateway.proc.send_signal(signal.SIGTERM)
        try:
            gateway.proc.wait(20)
        except subprocess.TimeoutExpired:
            gateway.proc.kill()
            gateway.proc.wait(10)


@contextmanager
def gateway_processes(
    config: Path, env: dict[str, str], workdir: Path, count: int = 1
) -> Iterator[list[Gateway]]:
    """``count`` ``pointsman serve`` subprocesses started together; yields once each /healthz answers;
    SIGTERM (then SIGKILL) on exit."""
    gateways = [_spawn(config, env, workdir) for _ in range(count)]
    try:
        for gateway in gateways:
            _wait_ready(gateway)
        yield gateways
    finally:
        for gateway in gateways:
            _stop(gateway)


@contextmanager
def gateway_process(config: Path, env: dict[str, str], workdir: Path) -> Iterator[Gateway]:
    with gateway_processes(config, env, workdir, 1) as [gateway]:
        yield gateway


def base_env(database_url: str, data_dir: Path, provider_key: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POINTSMAN_")}
    env.update(
        POINTSMAN_DATABASE_URL=database_url,
        POINTSMAN_DATA_DIR=str(data_dir),
        FAKE_PROVIDER_KEY=provider_key,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


# ---- 200 requests at once ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: list[tuple[str, int, int]] = field(
        default_factory=list
    )  # (endpoint that answered, prompt, completion)
    refused: int = 0
    other: list[str] = field(default_factory=list)


async def _fire(base_urls: list[str], key: str, n: int) -> Outcome:
    outcome = Outcome()
    clients = [openai.AsyncOpenAI(base_url=u, api_key=key, max_retries=0, timeout=60) for u in base_urls]
    gate = asyncio.Event()

    async def one(i: int) -> None:
        await gate.wait()
        try:
            reply = await clients[i % len(clients)].chat.completions.create(
                model=MODELS[i % len(MODELS)],
                messages=MESSAGES,
                max_tokens=MAX_TOKENS,  # type: ignore[arg-type]
            )
        except openai.APIStatusError as exc:
            if exc.status_code == 402:
                outcome.refused += 1
            else:
                outcome.other.append(f"{exc.status_code}: {exc.message}")
            return
        assert reply.usage is not None
        outcome.ok.append((reply.model, reply.usage.prompt_tokens, reply.usage.completion_tokens))

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    await asyncio.sleep(0.2)  # every request is waiting at the gate
    gate.set()
    await asyncio.gather(*tasks)
    for c in clients:
        await c.close()
    return outcome


def _race(database_url: str, tmp_path: Path, gateways: int) -> None:
    provider_key = f"sk-provider-{uuid.uuid4().hex}"
    engine = create_db_engine(database_url)
    upgrade(engine)
    ledger = Ledger(engine, config=LedgerConfig())
    hold = max(
        request_cost_pico(Price(*PRICES[e]), count_message_tokens(MESSAGES), MAX_TOKENS)
        for e in ("m1@fake", "m2@fake", "bad@fake")
    )
    funded = hold * 10 + hold // 3  # about ten requests' worth
    created = KeyStore(ledger).create("racer", credit_usd=Decimal(funded) / 10**12)
    account_id = created.info.account_id
    lowest: list[int] = []
    stop = threading.Event()

    def monitor() -> None:
        while not stop.is_set():
            lowest.append(ledger.balance(account_id))
            time.sleep(0.005)

    with ExitStack() as stack:
        fake = stack.enter_context(running_fake_provider(FakeConfig(require_key=provider_key)))
        config = write_config(tmp_path / "config.toml", fake.base_url)
        env = base_env(database_url, tmp_path / "data", provider_key)
        procs = stack.enter_context(gateway_processes(config, env, tmp_path, gateways))
        watcher = threading.Thread(target=monitor)
        watcher.start()
        try:
            outcome = asyncio.run(_fire([g.base_url for g in procs], created.key, 200))
        finally:
            stop.set()
            watcher.join()

    assert not outcome.other, outcome.other[:5]
    assert len(outcome.ok) + outcome.refused == 200
    assert len(outcome.ok) >= 10 and outcome.refused > 0
    expected: dict[str, int] = {}
    for endpoint, prompt_tokens, completion_tokens in outcome.ok:
        cost = request_cost_pico(Price(*PRICES[endpoint]), prompt_tokens, completion_tokens)
        expected[endpoint] = expected.get(endpoint, 0) + cost
    total = sum(expected.values())
    assert ledger.spend_by_endpoint(account_id) == dict(
        sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    assert "bad@fake" not in expected  # a fallback charges only the endpoint that answered
    assert total <= funded
    assert min(lowest) >= 0
    balance = ledger.balance(account_id)
    assert balance == funded - total >= 0
    assert ledger.derived_balance(account_id) == balance
    assert ledger.open_reservations(account_id) == 0
    settles = [e for e in ledger.history(account_id, limit=1000) if e.kind == "settle"]
    assert len(settles) == len(outcome.ok)
    for e in settles:  # every entry carries the tokens and the prices it was charged at
        assert e.endpoint is not None and e.input_tokens is not None and e.output_tokens is not None
        p = Price(Decimal(e.input_usd_per_mtok or "x"), Decimal(e.output_usd_per_mtok or "x"))
        assert p == Price(*PRICES[e.endpoint])
        assert e.cost_pico == request_cost_pico(p, e.input_tokens, e.output_tokens)
    engine.dispose()


@pytest.mark.postgres
def test_two_gateways_on_postgres_never_overspend(tmp_path: Path) -> None:
    if reason := postgres_available():
        pytest.skip(reason)
    with temporary_postgres_schema() as url:
        _race(url, tmp_path, gateways=2)


def test_one_gateway_on_sqlite_never_overspends(tmp_path: Path) -> None:
    _race(f"sqlite:///{tmp_path / 'race.db'}", tmp_path, gateways=1)


# ---- crash safety --------------------------------------------------------------------------------------------


def test_a_killed_gateway_leaves_no_reservation_open_forever(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'crash.db'}"
    provider_key = f"sk-provider-{uuid.uuid4().hex}"
    engine = create_db_engine(database_url)
    upgrade(engine)
    ledger = Ledger(engine, config=LedgerConfig(reservation_ttl_s=1))
    created = KeyStore(ledger).create("crashy", credit_usd=5)
    account_id = created.info.account_id
    start_balance = ledger.balance(account_id)
    with running_fake_provider(FakeConfig(require_key=provider_key)) as fake:
        config = write_config(tmp_path / "config.toml", fake.base_url)
        env = base_env(
            database_url,
            tmp_path / "data",
            provider_key,
            POINTSMAN_LEDGER_RESERVATION_TTL_S="1",
            POINTSMAN_LEDGER_SWEEP_INTERVAL_S="0.2",
        )
        with gateway_process(config, env, tmp_path) as doomed:

            def hang() -> None:
                with pytest.raises(httpx.TransportError):
                    httpx.post(
                        f"{doomed.base_url}/chat/completions",
                        json={"model": "slow@fake", "messages": MESSAGES, "max_tokens": 100},
                        headers={"authorization": f"Bearer {created.key}"},
                        timeout=30,
                    )

            client = threading.Thread(target=hang)
            client.start()
            _until(lambda: ledger.open_reservations(account_id) == 1, "the request never reserved")
            assert ledger.balance(account_id) < start_balance
            doomed.proc.kill()  # SIGKILL: no shutdown, no settle, no release
            doomed.proc.wait(10)
            client.join(30)
        time.sleep(1.5)  # past the TTL, with no gateway running: nothing has returned the hold yet
        assert ledger.open_reservations(account_id) == 1
        with gateway_process(config, env, tmp_path) as survivor:
            _until(
                lambda: ledger.open_reservations(account_id) == 0,
                lambda: f"the sweeper never expired it; gateway log:\n{survivor.logs()[-4000:]}",
            )
            assert ledger.balance(account_id) == start_balance == ledger.derived_balance(account_id)
            assert [e.kind for e in ledger.history(account_id)][:2] == ["expire", "reserve"]
            # The sweeper keeps running, not only at start: a new abandoned hold is returned too.
            ledger.reserve(
                account_id,
                prices=Price(Decimal(1), Decimal(1)),
                input_tokens=1,
                max_output_tokens=1,
                ttl_s=0.5,
            )
            _until(lambda: ledger.open_reservations(account_id) == 0, "the periodic sweep never ran")
    engine.dispose()


def _until(condition: Callable[[], bool], message: str | Callable[[], str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message if isinstance(message, str) else message()
        time.sleep(0.05)


# ---- canary: keys never leak ----------------------------------------------------------------------------------


def _exercise_with_canaries(database_url: str, tmp_path: Path) -> tuple[str, dict[str, str]]:
    """Drive a DEBUG-logging gateway through success, streaming, 401, 402, 400, /v1/credits and an admin top-up
    with canary keys; returns its stdout+stderr and the keys that must appear nowhere."""
    provider_key = f"sk-CANARY-PROVIDER-{uuid.uuid4().hex}"
    bogus_key = f"pm-CANARY-BOGUS-{uuid.uuid4().hex}"
    engine = create_db_engine(database_url)
    upgrade(engine)
    keys = KeyStore(Ledger(engine))
    user = keys.create("canary-user").key
    admin = keys.create("canary-admin", admin=True).key
    poor = keys.create("canary-poor", credit_usd="0.000001").key
    revoked = keys.create("canary-user").key
    keys.revoke(revoked[:12])
    engine.dispose()
    canaries = {"account key": user, "admin key": admin, "poor key": poor, "revoked key": revoked}
    canaries |= {"provider key": provider_key, "bogus key": bogus_key}
    with running_fake_provider(FakeConfig(require_key=provider_key)) as fake:
        config = write_config(tmp_path / "config.toml", fake.base_url)
        env = base_env(database_url, tmp_path / "data", provider_key)
        with gateway_process(config, env, tmp_path) as gw:
            c = openai.OpenAI(base_url=gw.base_url, api_key=user, max_retries=0)
            reply = c.chat.completions.create(model="m1@fake", messages=MESSAGES, max_tokens=20)  # type: ignore[arg-type]
            assert reply.choices[0].message.content  # the provider key was sent upstream and accepted
            for _ in c.chat.completions.create(model="m2@fake", messages=MESSAGES, stream=True):  # type: ignore[arg-type]
                pass
            statuses = {}
            for name, key in (("bogus", bogus_key), ("poor", poor), ("revoked", revoked)):
                r = httpx.post(
                    f"{gw.base_url}/chat/completions",
                    json={"model": "m1@fake", "messages": MESSAGES, "max_tokens": 500},
                    headers={"authorization": f"Bearer {key}"},
                )
                statuses[name] = r.status_code
            assert statuses == {"bogus": 401, "poor": 402, "revoked": 401}
            r = httpx.post(
                f"{gw.base_url}/chat/completions", content=b"{not json", headers={"x-api-key": user}
            )
            assert r.status_code == 400
            assert (
                httpx.get(f"{gw.base_url}/credits", headers={"authorization": f"Bearer {user}"}).status_code
                == 200
            )
            top_up = httpx.post(
                f"{gw.base_url}/admin/credits",
                json={"account": "canary-user", "usd": "1"},
                headers={"authorization": f"Bearer {admin}"},
            )
            assert top_up.status_code == 200
        logs = gw.logs()
    # logging really was verbose: the gateway's own per-request DEBUG trace and the access log are there
    assert "DEBUG pointsman.gateway.chat" in logs and "POST /v1/chat/completions" in logs
    for what, key in canaries.items():
        assert key not in logs, f"the {what} leaked into the gateway's output"
    return logs, canaries


def test_no_key_appears_in_logs_or_the_sqlite_database(tmp_path: Path) -> None:
    db_path = tmp_path / "canary.db"
    _, canaries = _exercise_with_canaries(f"sqlite:///{db_path}", tmp_path)
    dump = "\n".join(sqlite3.connect(db_path).iterdump())
    assert "canary-user" in dump and "settle" in dump  # the dump is real
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("canary.db"))
    for what, key in canaries.items():
        assert key not in dump, f"the {what} is in the database dump"
        assert key.encode() not in raw, f"the {what} is in the database files"


@pytest.mark.postgres
def test_no_key_appears_in_logs_or_the_postgres_database(tmp_path: Path) -> None:
    if reason := postgres_available():
        pytest.skip(reason)
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed (apt-get install postgresql-client)")
    with temporary_postgres_schema() as url:
        _, canaries = _exercise_with_canaries(url, tmp_path)
        schema = url.rsplit("%3D", 1)[-1]
        dump = subprocess.run(
            ["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-n", schema],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    assert "canary-user" in dump and "settle" in dump  # the dump is real
    for what, key in canaries.items():
        assert key not in dump, f"the {what} is in the database dump"
