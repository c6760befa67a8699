"""Circuit breakers shared by gateway replicas through a real Redis (127.0.0.1:6379): one replica trips an
endpoint, another skips it; a probe that closes it deletes the shared key; Redis down means each replica goes on
with its own breaker, saying so once in the log."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from _gateway_stack import GatewayStack, gateway_stack, wait_until

from pointsman.gateway.breaker import CircuitBreaker
from pointsman.gateway.breaker_redis import RedisBreakerSync
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import free_port
from pointsman.settings import Settings

pytestmark = pytest.mark.timeout(60)

REDIS_URL = "redis://127.0.0.1:6379/0"
SETTINGS = GatewaySettings(
    billing="open", retries=0, breaker_failures=1, breaker_cooldown_s=30, breaker_sync_s=0.05
)
MESSAGES = [{"role": "user", "content": "hi"}]


def _redis_or_skip() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip(f"needs the Redis server at 127.0.0.1:6379 ({exc})")


@dataclass
class Replicas:
    a: GatewayStack  # two gateway replicas sharing one Redis and one fake provider
    b: GatewayStack
    bad: str  # an endpoint that always fails (unique per test: the Redis is shared)
    ok: str


@pytest.fixture
def replicas() -> Iterator[Replicas]:
    _redis_or_skip()
    tag = uuid.uuid4().hex[:8]
    bad, ok = f"bad-{tag}@fake", f"ok-{tag}@fake"
    endpoints = {bad: "fake-model#fault=500", ok: "fake-model#tokens=2"}
    process = Settings(redis_url=REDIS_URL)
    with (
        gateway_stack(endpoints, gateway_settings=SETTINGS, settings=process) as a,
        gateway_stack(endpoints, gateway_settings=SETTINGS, settings=process, fake=a.fake) as b,
    ):
        try:
            yield Replicas(a, b, bad, ok)
        finally:
            import redis

            redis.Redis.from_url(REDIS_URL).delete(f"pointsman:breaker:{bad}")


@pytest.mark.redis
def test_a_breaker_tripped_on_one_replica_is_skipped_by_the_other(replicas: Replicas) -> None:
    chain = {"model": f"{replicas.bad}->{replicas.ok}", "messages": MESSAGES}
    reply = httpx.post(replicas.a.base_url + "/chat/completions", json=chain, timeout=20)
    assert reply.json()["model"] == replicas.ok
    assert replicas.bad in replicas.a.cooling_down()
    wait_until(
        lambda: replicas.bad in replicas.b.cooling_down(), "replica b never saw the breaker replica a opened"
    )
    assert 15 < replicas.b.cooling_down()[replicas.bad] <= 30, "adopted for what remains of a's cooldown"
    explained = httpx.post(
        replicas.b.base_url + "/chat/completions",
        json=chain,
        headers={"x-pointsman-explain": "1"},
        timeout=20,
    ).json()
    first = explained["pointsman"]["attempts"][0]
    assert first["endpoint"] == replicas.bad and first["outcome"].startswith("skipped: cooling down")
    assert replicas.a.fake.stats["fake-model#fault=500"] == 1, "only replica a ever sent to the bad endpoint"


@pytest.mark.redis
def test_a_shared_key_that_disappears_early_closes_the_adopted_breaker(replicas: Replicas) -> None:
    import redis

    chain = {"model": f"{replicas.bad}->{replicas.ok}", "messages": MESSAGES}
    httpx.post(replicas.a.base_url + "/chat/completions", json=chain, timeout=20)
    wait_until(lambda: replicas.bad in replicas.b.cooling_down(), "replica b never saw the breaker open")
    redis.Redis.from_url(REDIS_URL).delete(f"pointsman:breaker:{replicas.bad}")  # as a successful probe does
    wait_until(
        lambda: replicas.bad not in replicas.b.cooling_down(), "replica b kept an adopted, closed breaker"
    )
    assert replicas.bad in replicas.a.cooling_down(), (
        "a cooldown from this replica's own failures runs its course"
    )


@pytest.mark.redis
def test_a_probe_that_closes_the_breaker_deletes_the_shared_key() -> None:
    _redis_or_skip()
    import redis

    endpoint = f"probe-{uuid.uuid4().hex[:8]}@fake"
    now = [100.0]
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=30, clock=lambda: now[0])
    key = f"pointsman:breaker:{endpoint}"
    plain = redis.Redis.from_url(REDIS_URL)

    async def run() -> None:
        sync = RedisBreakerSync(breaker, REDIS_URL, [endpoint])
        try:
            breaker.failure(endpoint)
            assert await sync.sync_once()
            assert 15_000 < plain.pttl(key) <= 30_000
            now[0] += 31  # the cooldown is over: one probe
            assert breaker.allow(endpoint)
            breaker.success(endpoint)
            assert await sync.sync_once()
            assert plain.exists(key) == 0
        finally:
            await sync.aclose()
            plain.delete(key)

    asyncio.run(run())


def test_redis_down_keeps_the_local_breaker_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    breaker = CircuitBreaker(failure_threshold=1, cooldown_s=30)

    async def run() -> list[bool]:
        sync = RedisBreakerSync(breaker, dead, ["e@p"])
        try:
            breaker.failure("e@p")
            return [await sync.sync_once(), await sync.sync_once()]
        finally:
            await sync.aclose()

    with caplog.at_level("WARNING", logger="pointsman.gateway.breaker"):
        assert asyncio.run(run()) == [False, False]
    assert not breaker.allow("e@p"), "the local breaker still decides"
    lines = [r.getMessage() for r in caplog.records if "cannot reach Redis" in r.getMessage()]
    assert len(lines) == 1 and f"127.0.0.1:{dead.rsplit(':', 1)[1]}" in lines[0]


def test_a_gateway_whose_redis_is_down_still_serves_and_trips_locally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    endpoints = {"bad@fake": "fake-model#fault=500", "ok@fake": "fake-model"}
    with (
        caplog.at_level("WARNING", logger="pointsman.gateway.breaker"),
        gateway_stack(endpoints, gateway_settings=SETTINGS, settings=dead) as stack,
    ):
        chain = {"model": "bad@fake->ok@fake", "messages": MESSAGES}
        assert (
            httpx.post(stack.base_url + "/chat/completions", json=chain, timeout=20).json()["model"]
            == "ok@fake"
        )
        assert "bad@fake" in stack.cooling_down()
        wait_until(lambda: any("cannot reach Redis" in r.getMessage() for r in caplog.records), "no log line")
