"""The ledger behind the real gateway (in process, uvicorn on loopback, the fake provider, the real ``openai``
client): exact charges for the endpoint that answered, 401/402/403/429 in OpenAI's shape, /v1/credits, admin
top-ups, aborted streams settled for what was generated."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from _gateway_stack import gateway_stack, hang_up_once, wait_until

from pointsman.db import create_db_engine, upgrade
from pointsman.errors import UnknownNameError
from pointsman.gateway.app import create_app
from pointsman.gateway.billing import OpenAccessBilling
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import fake_catalog, running_gateway
from pointsman.ledger import KeyStore, Ledger, LedgerConfig, Price
from pointsman.ledger.billing import LedgerBilling
from pointsman.ledger.limits import InProcessRateLimiter
from pointsman.ledger.money import request_cost_pico, usd_to_pico
from pointsman.providers.fake import VOCAB

PRICES = {
    "small@fake": (Decimal("0.15"), Decimal("0.6")),
    "big@fake": (Decimal("3"), Decimal("15")),
    "broken@fake": (Decimal("30"), Decimal("60")),
    "slow@fake": (Decimal("1"), Decimal("2")),
    "long@fake": (Decimal("1"), Decimal("10")),
    "late@fake": (Decimal("1"), Decimal("2")),
}
UPSTREAM = {
    "small@fake": "fake-model#tokens=12",
    "big@fake": "fake-model#tokens=30",
    "broken@fake": "fake-model#fault=500",
    "slow@fake": "fake-model#tokens=400&itl_ms=20",
    "long@fake": "fake-model#tokens=2000",
    "late@fake": "fake-model#fault=slow_first_byte&delay_ms=20000",  # first byte long after the test ends
}


def no_ranker(messages: Any, model: str, max_tokens: int | None) -> Any:
    raise UnknownNameError("router", model, [], param="model")  # these tests always name endpoints


@dataclass
class Stack:
    base_url: str
    ledger: Ledger
    keys: KeyStore


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    engine = create_db_engine(f"sqlite:///{tmp_path / 'gw.db'}")
    upgrade(engine)
    ledger = Ledger(engine, config=LedgerConfig(signup_credit_usd=Decimal(1)))
    billing = LedgerBilling(ledger, InProcessRateLimiter())
    with gateway_stack(
        UPSTREAM,
        billing=billing,
        gateway_settings=GatewaySettings(retries=0, backoff_base_s=0, default_max_output_tokens=100),
        catalog_options={"prices": {k: (float(a), float(b)) for k, (a, b) in PRICES.items()}},
        ranker=no_ranker,
        default_router="router@q:1",
        uvloop=False,
    ) as gateway:
        yield Stack(gateway.base_url, ledger, KeyStore(ledger))


def client(stack: Stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)


def price(endpoint: str) -> Price:
    return Price(*PRICES[endpoint])


def test_charges_the_reported_usage_of_the_endpoint_that_answered(stack: Stack) -> None:
    key = stack.keys.create("alice").key
    account = stack.ledger.account("alice")
    raw = client(stack, key).chat.completions.with_raw_response.create(
        model="broken@fake->big@fake", messages=[{"role": "user", "content": "hello there"}], max_tokens=100
    )
    reply = raw.parse()
    assert reply.model == "big@fake" and reply.usage is not None
    cost = request_cost_pico(price("big@fake"), reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert stack.ledger.spend_by_endpoint(account.id) == {"big@fake": cost}
    settle = stack.ledger.history(account.id)[0]
    assert (settle.kind, settle.endpoint, settle.cost_pico) == ("settle", "big@fake", cost)
    assert (settle.input_tokens, settle.output_tokens) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert settle.request_id == raw.headers["x-request-id"]
    assert (
        stack.ledger.balance(account.id) == usd_to_pico(1) - cost == stack.ledger.derived_balance(account.id)
    )
    assert stack.ledger.open_reservations(account.id) == 0


def test_streams_are_settled_from_the_usage_event(stack: Stack) -> None:
    key = stack.keys.create("alice").key
    account = stack.ledger.account("alice")
    stream = client(stack, key).chat.completions.create(
        model="small@fake",
        messages=[{"role": "user", "content": "stream please"}],
        max_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    for chunk in stream:
        usage = chunk.usage or usage
    assert usage is not None
    wait_until(
        lambda: not stack.ledger.open_reservations(account.id), "the reservation was never settled", 10
    )
    cost = request_cost_pico(price("small@fake"), usage.prompt_tokens, usage.completion_tokens)
    assert stack.ledger.totals(account.id)["spent"] == cost


def test_an_aborted_stream_is_settled_for_what_was_generated(stack: Stack) -> None:
    key = stack.keys.create("alice").key
    account = stack.ledger.account("alice")
    body = {"model": "slow@fake", "messages": [{"role": "user", "content": "long answer"}], "max_tokens": 400}
    with (
        httpx.Client(timeout=30) as http,
        http.stream(
            "POST",
            f"{stack.base_url}/chat/completions",
            json={**body, "stream": True},
            headers={"authorization": f"Bearer {key}"},
        ) as response,
    ):
        assert response.status_code == 200
        received = 0
        for line in response.iter_lines():
            if line.startswith("data: {"):
                received += 1
            if received >= 5:
                break  # hang up mid-stream
    wait_until(
        lambda: not stack.ledger.open_reservations(account.id), "the reservation was never settled", 10
    )
    [settle] = [e for e in stack.ledger.history(account.id) if e.kind == "settle"]
    assert settle.output_tokens is not None and 1 <= settle.output_tokens < 400
    assert settle.cost_pico == request_cost_pico(
        price("slow@fake"), settle.input_tokens or 0, settle.output_tokens
    )
    assert stack.ledger.derived_balance(account.id) == stack.ledger.balance(account.id)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "reply"])
def test_a_client_leaving_before_the_first_token_releases_the_hold_at_once(
    stack: Stack, stream: bool
) -> None:
    key = stack.keys.create("alice").key
    account = stack.ledger.account("alice")
    body = {"model": "late@fake", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10}

    def held() -> int:
        return stack.ledger.open_reservations(account.id)

    hang_up_once(
        stack.base_url, {**body, "stream": stream}, until=held, headers={"authorization": f"Bearer {key}"}
    )
    wait_until(lambda: not held(), "the hold was not released when the client left")  # first byte: 20 s away
    assert [e.kind for e in stack.ledger.history(account.id)] == ["release", "reserve", "grant"]
    assert stack.ledger.balance(account.id) == usd_to_pico(1) == stack.ledger.derived_balance(account.id)


def test_a_client_leaving_mid_stream_is_settled_at_once_for_what_was_generated(stack: Stack) -> None:
    key = stack.keys.create("alice").key
    account = stack.ledger.account("alice")
    body = {"model": "slow@fake", "messages": [{"role": "user", "content": "long"}], "max_tokens": 400}
    second_token = b'"content": "' + VOCAB[1].encode() + b'"'
    hang_up_once(
        stack.base_url,
        {**body, "stream": True},
        headers={"authorization": f"Bearer {key}"},
        after_reading=second_token,
    )
    # the whole stream would take 8 s (400 tokens, 20 ms apart): settled within 3 s means settled at the hang-up
    wait_until(lambda: not stack.ledger.open_reservations(account.id), "not settled at the hang-up", 3)
    [settle] = [e for e in stack.ledger.history(account.id) if e.kind == "settle"]
    assert settle.output_tokens is not None and 2 <= settle.output_tokens < 400


def test_insufficient_credit_is_402_and_nothing_goes_upstream(stack: Stack) -> None:
    key = stack.keys.create("poor", credit_usd="0.0001").key
    with pytest.raises(openai.APIStatusError) as info:
        client(stack, key).chat.completions.create(
            model="big@fake", messages=[{"role": "user", "content": "hi"}], max_tokens=1000
        )
    assert info.value.status_code == 402
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "insufficient_quota" and "top up" in error["message"]
    account = stack.ledger.account("poor")
    assert [e.kind for e in stack.ledger.history(account.id)] == ["grant"]


def test_failure_before_any_token_releases_the_hold(stack: Stack) -> None:
    key = stack.keys.create("alice").key
    account = stack.ledger.account("alice")
    with pytest.raises(openai.APIStatusError) as info:
        client(stack, key).chat.completions.create(
            model="broken@fake", messages=[{"role": "user", "content": "hi"}], max_tokens=10
        )
    assert info.value.status_code == 502
    assert [e.kind for e in stack.ledger.history(account.id)] == ["release", "reserve", "grant"]
    assert stack.ledger.balance(account.id) == usd_to_pico(1)


def test_bad_and_revoked_keys_are_401(stack: Stack) -> None:
    created = stack.keys.create("alice")
    for key in ("pm-not-a-key", created.key[:-2]):
        with pytest.raises(openai.AuthenticationError):
            client(stack, key).chat.completions.create(
                model="small@fake", messages=[{"role": "user", "content": "x"}]
            )
    stack.keys.revoke(created.info.prefix)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        client(stack, created.key).chat.completions.create(
            model="small@fake", messages=[{"role": "user", "content": "x"}]
        )
    response = httpx.post(f"{stack.base_url}/chat/completions", json={})
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


def test_rpm_limit_is_429(stack: Stack) -> None:
    key = stack.keys.create("alice", rpm_limit=2).key
    c = client(stack, key)
    for _ in range(2):
        c.chat.completions.create(
            model="small@fake", messages=[{"role": "user", "content": "x"}], max_tokens=5
        )
    with pytest.raises(openai.RateLimitError, match="2 requests per minute"):
        c.chat.completions.create(
            model="small@fake", messages=[{"role": "user", "content": "x"}], max_tokens=5
        )


def test_budget_limit_is_429(stack: Stack) -> None:
    key = stack.keys.create("alice", budget_usd="0.002", budget_period="day").key
    c = client(stack, key)
    c.chat.completions.create(model="big@fake", messages=[{"role": "user", "content": "x"}], max_tokens=120)
    with pytest.raises(openai.RateLimitError, match="budget"):
        c.chat.completions.create(
            model="big@fake", messages=[{"role": "user", "content": "x"}], max_tokens=120
        )


def test_credits_endpoint(stack: Stack) -> None:
    key = stack.keys.create("alice").key
    c = client(stack, key)
    replies = [
        c.chat.completions.create(model=m, messages=[{"role": "user", "content": "hi"}], max_tokens=40)
        for m in ("small@fake", "big@fake", "big@fake")
    ]
    spent: dict[str, int] = {}
    for r in replies:
        assert r.usage is not None
        spent[r.model] = spent.get(r.model, 0) + request_cost_pico(
            price(r.model), r.usage.prompt_tokens, r.usage.completion_tokens
        )
    body = httpx.get(f"{stack.base_url}/credits", headers={"authorization": f"Bearer {key}"}).json()
    total = sum(spent.values())
    assert body["account"] == "alice"
    assert Decimal(body["spent_usd"]) * 10**12 == total
    assert Decimal(body["balance_usd"]) * 10**12 == usd_to_pico(1) - total
    assert body["granted_usd"] == "1.000000" and body["held_usd"] == "0.000000"
    assert {k: Decimal(v) * 10**12 for k, v in body["spend_by_model_usd"].items()} == {
        "small": spent["small@fake"],
        "big": spent["big@fake"],
    }
    assert list(body["spend_by_endpoint_usd"]) == ["big@fake", "small@fake"]
    assert httpx.get(f"{stack.base_url}/credits").status_code == 401


def test_admin_top_up(stack: Stack) -> None:
    user = stack.keys.create("alice").key
    admin = stack.keys.create("ops", admin=True, credit_usd=0).key
    url = f"{stack.base_url}/admin/credits"
    denied = httpx.post(
        url, json={"account": "alice", "usd": "5"}, headers={"authorization": f"Bearer {user}"}
    )
    assert denied.status_code == 403 and "admin key" in denied.json()["error"]["message"]
    ok = httpx.post(
        url,
        json={"account": "alice", "usd": "5", "note": "inv 9"},
        headers={"authorization": f"Bearer {admin}"},
    )
    assert ok.status_code == 200 and ok.json() == {
        "object": "credits",
        "account": "alice",
        "balance_usd": "6.000000",
    }
    entry = stack.ledger.history(stack.ledger.account("alice").id)[0]
    assert (entry.kind, entry.note) == ("top_up", "inv 9")
    created = httpx.post(
        url,
        json={"account": "bob", "usd": 2, "grant": True, "create": True},
        headers={"authorization": f"Bearer {admin}"},
    )
    assert created.json()["balance_usd"] == "2.000000"
    for bad in (
        {"account": "alice", "usd": "-1"},
        {"account": "alice"},
        {"account": "alice", "usd": "1", "x": 1},
    ):
        response = httpx.post(url, json=bad, headers={"authorization": f"Bearer {admin}"})
        assert response.status_code == 400, bad
        assert "invalid top-up" in response.json()["error"]["message"]
    missing = httpx.post(
        url, json={"account": "zed", "usd": "1"}, headers={"authorization": f"Bearer {admin}"}
    )
    assert missing.status_code == 404


def test_credits_on_an_open_access_gateway_says_how_to_enable_accounts(tmp_path: Path) -> None:
    app = create_app(
        catalog=fake_catalog("http://127.0.0.1:9/v1", {"a@fake": "m"}),
        billing=OpenAccessBilling(),
        gateway_settings=GatewaySettings(),
        ranker=no_ranker,
        default_router="router@q:1",
    )
    with running_gateway(app, uvloop=False) as base_url:
        response = httpx.get(f"{base_url}/credits")
    assert response.status_code == 400 and "--open-access" in response.json()["error"]["message"]


def test_a_request_without_max_tokens_cannot_overspend(stack: Stack) -> None:
    """With no max_tokens the gateway sends the reserved default upstream, so the answer fits the hold."""
    key = stack.keys.create("alice", credit_usd="0.0011").key  # covers the hold for 100 output tokens
    client(stack, key).chat.completions.create(
        model="long@fake", messages=[{"role": "user", "content": "hi"}]
    )
    assert stack.ledger.account("alice").balance_pico >= 0
