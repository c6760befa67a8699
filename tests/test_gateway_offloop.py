"""The scorer runs off the event loop: a ranker that blocks for a second does not stall other streams."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import openai

from pointsman.gateway.app import create_app
from pointsman.gateway.billing import OpenAccessBilling
from pointsman.gateway.routing import Choice
from pointsman.gateway.settings import GatewaySettings
from pointsman.gateway.testing import fake_catalog, running_gateway
from pointsman.providers.fake import FakeConfig, running_fake_provider

SCORER_S = 1.0
MESSAGES = [{"role": "user", "content": "hi"}]


def test_slow_scorer_does_not_stall_a_running_stream() -> None:
    with running_fake_provider(FakeConfig()) as fake:
        catalog = fake_catalog(fake.base_url, {"m@fast": "fake-model#tokens=40&itl_ms=25"})
        endpoint = catalog.endpoint("m@fast")
        scored = threading.Event()

        def slow_ranker(
            messages: Sequence[Mapping[str, Any]], model: str, max_tokens: int | None
        ) -> tuple[list[Choice], dict[str, Any]]:
            time.sleep(SCORER_S)  # a blocking scorer, as a CPU-bound model would be
            scored.set()
            return [Choice(endpoint, {"score": 1.0})], {}

        app = create_app(
            catalog=catalog,
            billing=OpenAccessBilling(),
            ranker=slow_ranker,
            gateway_settings=GatewaySettings(scorer_threads=1),
        )
        with running_gateway(app) as base_url:
            client = openai.OpenAI(base_url=base_url, api_key="t", max_retries=0)
            routed: list[float] = []

            def routed_request() -> None:
                start = time.monotonic()
                client.chat.completions.create(model="router@q:1", messages=MESSAGES)  # type: ignore[arg-type]
                routed.append(time.monotonic() - start)

            arrivals: list[float] = []
            stream = client.chat.completions.create(model="m@fast", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
            side = None
            for _ in stream:
                arrivals.append(time.monotonic())
                if side is None:  # the stream is flowing: now make the gateway score something slowly
                    side = threading.Thread(target=routed_request)
                    side.start()
            assert side is not None
            side.join(10)
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert scored.is_set() and routed and routed[0] >= SCORER_S, "the scorer really ran while streaming"
    assert arrivals[-1] - arrivals[0] < SCORER_S + 1.0 + 0.5  # 40 tokens at 25 ms ≈ 1 s, not stretched
    assert max(gaps) < SCORER_S / 2, f"a gap of {max(gaps):.3f}s: the scorer blocked the event loop"
