"""The commands as users run them: ``pointsman fake-provider`` and ``pointsman serve`` as real processes,
wired together by the demo config, driven with the real ``openai`` client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from pointsman.gateway.testing import free_port

pytestmark = pytest.mark.slow
MESSAGES = [{"role": "user", "content": "What is 2 + 2?"}]


def _pointsman(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = "from pointsman.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"process exited with {proc.returncode}:\n{out}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up within {timeout}s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    config = tmp_path_factory.mktemp("demo") / "demo.toml"
    fake_port, gw_port = free_port(), free_port()
    fake = _pointsman(
        "fake-provider", "--port", str(fake_port), "--tokens", "6", "--demo-config", str(config)
    )
    try:
        _wait_http(f"http://127.0.0.1:{fake_port}/healthz", fake)
        config.write_text(config.read_text() + "\n[gateway]\nretries = 0\n", encoding="utf-8")
        gateway = _pointsman("serve", "--port", str(gw_port), "--open-access", "--config", str(config))
        try:
            _wait_http(f"http://127.0.0.1:{gw_port}/healthz", gateway)
            yield f"http://127.0.0.1:{gw_port}/v1", f"http://127.0.0.1:{fake_port}"
        finally:
            _stop(gateway)
    finally:
        _stop(fake)


def test_demo_pipeline_routes_the_shipped_catalogue_offline(demo: tuple[str, str]) -> None:
    base_url, fake_url = demo
    client = openai.OpenAI(base_url=base_url, api_key="anything", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="router@q:1|c:0.01",
        messages=MESSAGES,
        extra_headers={"x-pointsman-explain": "1"},  # type: ignore[arg-type]
    )
    reply = raw.parse()
    assert reply.model == raw.headers["x-pointsman-endpoint"] and "@" in reply.model
    assert (reply.model_extra or {})["pointsman"]["candidates"][0]["terms"]
    chunks = list(
        client.chat.completions.create(model=reply.model, messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert httpx.get(fake_url + "/_fake/stats").json()["total"] == 2


def test_anthropic_style_provider_in_the_demo(demo: tuple[str, str]) -> None:
    base_url, _ = demo
    client = openai.OpenAI(base_url=base_url, api_key="anything", max_retries=0)
    models = [m.id for m in client.models.list() if m.id.endswith("@anthropic")]
    assert models, "the shipped catalogue has Anthropic endpoints"
    reply = client.chat.completions.create(model=models[0], messages=MESSAGES)  # type: ignore[arg-type]
    assert reply.model == models[0] and reply.usage is not None and reply.usage.completion_tokens == 6


def test_serve_without_billing_backend_or_flag_explains(tmp_path: Path) -> None:
    env = {**os.environ, "POINTSMAN_GATEWAY_BILLING": "nope"}
    proc = subprocess.run(
        [sys.executable, "-c", "from pointsman.cli import main; main()", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "error: unknown billing backend 'nope'; did you mean 'open'?" in proc.stderr
    assert "Traceback" not in proc.stderr
