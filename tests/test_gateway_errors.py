"""Every error reaches the client in OpenAI's shape with its own status; every upstream failure kind is
mapped to a Pointsman error; the billing seam's errors stop a request before anything goes upstream."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from fastapi.testclient import TestClient

import pointsman.errors as errors_module
from pointsman.errors import (
    AuthenticationError,
    ConfigError,
    InsufficientCreditError,
    PointsmanError,
    UnknownNameError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from pointsman.gateway import billing as billing_module
from pointsman.gateway.app import create_app
from pointsman.gateway.billing import OpenAccessBilling, load_billing
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import fake_catalog, running_gateway
from pointsman.providers.base import Upstream, map_transport_error
from pointsman.providers.fake import FakeProviderServer, running_fake_provider
from pointsman.settings import Settings

MESSAGES = [{"role": "user", "content": "hi"}]


def _instances() -> list[PointsmanError]:
    """One instance of every error class in pointsman.errors."""
    made: list[PointsmanError] = []
    for _, cls in inspect.getmembers(errors_module, inspect.isclass):
        if not issubclass(cls, PointsmanError):
            continue
        if cls.__name__ == "UnknownNameError":
            made.append(cls("model", "gpt-5", ["gpt-4"]))
        elif cls.__name__ == "RouterStringError":
            made.append(cls("bad", text="router@x", position=7))
        elif cls.__name__ == "UpstreamStatusError":
            made.append(cls("boom", upstream_status=503))
        elif cls.__name__ == "DataError":
            made.append(cls("bad row", path="f.jsonl", line=3))
        else:
            made.append(cls("something went wrong"))
    return made


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProviderServer]:
    with running_fake_provider() as server:
        yield server


@pytest.mark.parametrize("error", _instances(), ids=lambda e: type(e).__name__)
def test_every_error_class_is_answered_in_openai_shape(
    fake: FakeProviderServer, error: PointsmanError
) -> None:
    app = create_app(catalog=fake_catalog(fake.base_url, {"m@p": "fake-model"}), billing=OpenAccessBilling())

    @app.get("/boom")
    async def boom() -> None:
        raise error

    with TestClient(app) as client:
        resp = client.get("/boom")
    assert resp.status_code == error.status_code
    assert resp.json() == error.to_openai()
    assert set(resp.json()["error"]) == {"message", "type", "param", "code"}


def test_unexpected_exceptions_are_500_without_internals(fake: FakeProviderServer) -> None:
    app = create_app(catalog=fake_catalog(fake.base_url, {"m@p": "fake-model"}), billing=OpenAccessBilling())

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("secret internal detail")

    with TestClient(app, raise_server_exceptions=False) as client:
        resp = client.get("/bug")
    assert resp.status_code == 500
    assert "secret" not in resp.text and resp.json()["error"]["code"] == "internal_error"


TARGET = Upstream("m@p", "http://example.invalid/v1", "m")
REQUEST = httpx.Request("POST", "http://example.invalid/v1/chat/completions")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("refused", request=REQUEST), UpstreamConnectionError),
        (httpx.ConnectTimeout("slow", request=REQUEST), UpstreamTimeoutError),
        (httpx.PoolTimeout("pool", request=REQUEST), UpstreamTimeoutError),
        (httpx.ReadTimeout("slow", request=REQUEST), UpstreamTimeoutError),
        (httpx.WriteTimeout("slow", request=REQUEST), UpstreamTimeoutError),
        (httpx.ReadError("reset", request=REQUEST), UpstreamConnectionError),
        (httpx.WriteError("broken pipe", request=REQUEST), UpstreamConnectionError),
        (httpx.CloseError("close", request=REQUEST), UpstreamConnectionError),
        (httpx.RemoteProtocolError("disconnected", request=REQUEST), UpstreamConnectionError),
        (httpx.LocalProtocolError("bad", request=REQUEST), UpstreamConnectionError),
        (httpx.ProxyError("proxy", request=REQUEST), UpstreamConnectionError),
        (httpx.UnsupportedProtocol("ftp", request=REQUEST), UpstreamConnectionError),
        (httpx.DecodingError("gzip", request=REQUEST), UpstreamProtocolError),
        (httpx.TooManyRedirects("loop", request=REQUEST), UpstreamConnectionError),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else v.__name__,
)
def test_every_transport_failure_kind_is_mapped(exc: httpx.HTTPError, expected: type[UpstreamError]) -> None:
    mapped = map_transport_error(TARGET, exc)
    assert type(mapped) is expected
    assert mapped.endpoint == "m@p" and "m@p" in mapped.message
    assert mapped.retryable


def test_every_httpx_error_class_is_covered_by_the_mapping_test() -> None:
    covered = {
        "ConnectError", "ConnectTimeout", "PoolTimeout", "ReadTimeout", "WriteTimeout", "ReadError",
        "WriteError", "CloseError", "RemoteProtocolError", "LocalProtocolError", "ProxyError",
        "UnsupportedProtocol", "DecodingError", "TooManyRedirects",
    }  # fmt: skip
    leaves = {
        name
        for name, cls in inspect.getmembers(httpx, inspect.isclass)
        if issubclass(cls, httpx.HTTPError)
        and cls is not httpx.HTTPStatusError  # adapters never call raise_for_status
        and not any(
            issubclass(o, cls) and o is not cls for _, o in inspect.getmembers(httpx, inspect.isclass)
        )
    }
    assert leaves <= covered, f"unmapped httpx errors: {leaves - covered}"


class StrictBilling(OpenAccessBilling):
    """Only the key 'good' is accepted; reservations above the balance fail."""

    def __init__(self, balance_tokens: int) -> None:
        super().__init__()
        self.balance_tokens = balance_tokens

    async def authenticate(self, api_key: str | None) -> Any:
        if api_key != "good":
            raise AuthenticationError("invalid API key; create one with 'pointsman keys create'")
        return await super().authenticate(api_key)

    async def reserve(
        self, account: Any, endpoint: Any, input_tokens: int, max_output_tokens: int, request_id: str
    ) -> Any:
        if input_tokens + max_output_tokens > self.balance_tokens:
            raise InsufficientCreditError("balance too low; top up with 'pointsman credits top-up'")
        return await super().reserve(account, endpoint, input_tokens, max_output_tokens, request_id)


def test_billing_errors_stop_the_request_before_upstream(fake: FakeProviderServer) -> None:
    fake.stats.clear()
    app = create_app(
        catalog=fake_catalog(fake.base_url, {"m@p": "fake-model#tag=billing"}),
        billing=StrictBilling(balance_tokens=1000),
        gateway_settings=GatewaySettings(),
    )
    with running_gateway(app) as base_url:
        bad = openai.OpenAI(base_url=base_url, api_key="bad", max_retries=0)
        with pytest.raises(openai.AuthenticationError, match="pointsman keys create"):
            bad.chat.completions.create(model="m@p", messages=MESSAGES)  # type: ignore[arg-type]
        good = openai.OpenAI(base_url=base_url, api_key="good", max_retries=0)
        with pytest.raises(openai.APIStatusError, match="top up") as info:
            good.chat.completions.create(model="m@p", messages=MESSAGES, max_tokens=5000)  # type: ignore[arg-type]
        assert info.value.status_code == 402
        assert fake.stats["fake-model#tag=billing"] == 0
        reply = good.chat.completions.create(model="m@p", messages=MESSAGES, max_tokens=50)  # type: ignore[arg-type]
        assert reply.model == "m@p" and fake.stats["fake-model#tag=billing"] == 1


def test_load_billing_by_name() -> None:
    assert isinstance(load_billing("open", Settings(), _empty_config()), OpenAccessBilling)
    with pytest.raises(UnknownNameError, match="did you mean 'ledger'"):
        load_billing("ledgre", Settings(), _empty_config())


def test_missing_billing_backend_says_how_to_run_without(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        billing_module.BILLING_BACKENDS, "ledger", "pointsman.no_such_module:Billing.from_settings"
    )
    with pytest.raises(ConfigError, match="--open-access"):
        load_billing("ledger", Settings(), _empty_config())


def _empty_config() -> Any:
    from pointsman.config import load_config

    return load_config(None)
