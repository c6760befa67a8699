"""The benchmark runner: stream the standard prompts several times to each endpoint and record what happened.

For every endpoint, prompt ("short", "long") and repeat, one streamed request measures:

- TTFT: from sending the request to the first chunk with content (connect time included, as a client sees it);
- ITL: the gaps between successive content chunks, their mean and P90;
- output tokens per second after the first token: ``(output_tokens - 1) / (last chunk - first chunk)``;
- input and output tokens (the provider's reported usage; counted from the text, and flagged, when it
  reports none) and the cost: reported usage × the catalogue's price;
- errors and timeouts (first-token and total), each as a failed sample naming the cause.

A stream that ends without content is a failed sample (``no tokens streamed``); one that reports no usage is
kept with ``usage_reported=False`` and no cost. Nothing a provider does crashes the run.

Requests run at most ``concurrency`` at a time. Before anything is sent, the plan's worst-case cost (every
request answering ``max_tokens`` tokens) is estimated; a plan above the budget is refused, and while running,
a request that could take the spend past the budget is skipped and recorded as such.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from pointsman.errors import InvalidRequestError, MissingKeyError, UpstreamError
from pointsman.providers.base import Provider, Timeouts, Upstream
from pointsman.stats.figures import quantile
from pointsman.stats.prompts import PROMPTS, prompt_messages, prompt_tokens
from pointsman.stats.store import RunInfo, Sample, StatsStore
from pointsman.tokens import estimate_tokens

if TYPE_CHECKING:
    from pointsman.catalog import Catalog, Endpoint

__all__ = [
    "BUDGET_SKIP",
    "BenchConfig",
    "BenchPlan",
    "BenchResult",
    "check_plan",
    "measure_stream",
    "plan_benchmark",
    "run_benchmark",
    "run_scheduled",
    "upstream_for",
]

BUDGET_SKIP = "skipped: the run's budget cap was reached"


@dataclass(frozen=True)
class BenchConfig:
    """What one run measures. ``endpoints=None``: every enabled endpoint whose API key is set."""

    endpoints: Sequence[str] | None = None
    region: str = "default"
    prompts: Sequence[str] = ("short", "long")
    repeats: int = 3
    concurrency: int = 4
    max_tokens: int = 200
    budget_usd: Decimal = Decimal("1.00")
    timeouts: Timeouts = field(default_factory=lambda: Timeouts(first_token_s=30.0, total_s=120.0))

    def __post_init__(self) -> None:
        for name in self.prompts:
            if name not in PROMPTS:
                raise InvalidRequestError(
                    f"unknown benchmark prompt {name!r}; use one of {', '.join(PROMPTS)}"
                )
        if self.repeats < 1 or self.concurrency < 1 or self.max_tokens < 1:
            raise InvalidRequestError("--repeats, --concurrency and --max-tokens must each be at least 1")
        if self.budget_usd < 0:
            raise InvalidRequestError("--budget must be zero or more USD")


@dataclass(frozen=True)
class BenchPlan:
    """The requests a run will send and their worst-case cost, known before anything is sent."""

    config: BenchConfig
    endpoints: list[Endpoint]
    skipped: dict[str, str]  # endpoint → why it is not benchmarked (no API key)
    estimate_usd: Decimal

    @property
    def requests(self) -> int:
        return len(self.endpoints) * len(self.config.prompts) * self.config.repeats

    def worst_case_usd(self, endpoint: Endpoint, prompt: str) -> Decimal:
        return endpoint.cost_usd(prompt_tokens(prompt), self.config.max_tokens)

    def describe(self) -> str:
        c = self.config
        return (
            f"{self.requests} request(s): {len(self.endpoints)} endpoint(s) × {len(c.prompts)} prompt(s) "
            f"({', '.join(c.prompts)}) × {c.repeats} repeat(s), at most {c.max_tokens} output tokens each; "
            f"estimated cost at most ${self.estimate_usd:.6f} (budget ${c.budget_usd}), region {c.region!r}"
        )


@dataclass(frozen=True)
class BenchResult:
    run: RunInfo
    samples: list[Sample]

    @property
    def failures(self) -> int:
        return sum(1 for s in self.samples if not s.ok)


def upstream_for(endpoint: Endpoint) -> Upstream:
    """Where ``endpoint`` is served, with its API key from the environment."""
    key = os.environ.get(endpoint.api_key_env) if endpoint.api_key_env else None
    return Upstream(endpoint.name, endpoint.base_url, endpoint.upstream_model, endpoint.api_key_env, key)


def plan_benchmark(catalog: Catalog, config: BenchConfig) -> BenchPlan:
    """The endpoints to measure and the worst-case cost. Endpoints named explicitly must exist and have their
    key set (``MissingKeyError`` says which variable); by default, endpoints without a key are skipped."""
    skipped: dict[str, str] = {}
    if config.endpoints is not None:
        if not config.endpoints:
            raise InvalidRequestError("no endpoints given; name some with --endpoints model@provider,...")
        endpoints = [catalog.endpoint(name) for name in dict.fromkeys(config.endpoints)]
        for e in endpoints:
            upstream_for(e).require_key()
    else:
        endpoints = []
        for e in catalog.endpoints():
            if e.api_key_env and not os.environ.get(e.api_key_env):
                skipped[e.name] = f"no API key: set {e.api_key_env}"
            else:
                endpoints.append(e)
    plan = BenchPlan(config, endpoints, skipped, Decimal(0))
    estimate = sum(
        (plan.worst_case_usd(e, p) * config.repeats for e in endpoints for p in config.prompts), Decimal(0)
    )
    return BenchPlan(config, endpoints, skipped, estimate)


def _content(chunk: dict[str, Any]) -> str:
    parts = []
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content"):
            parts.append(str(delta["content"]))
    return "".join(parts)


async def measure_stream(
    provider: Provider,
    upstream: Upstream,
    endpoint: Endpoint,
    messages: list[dict[str, Any]],
    *,
    max_tokens: int,
    timeouts: Timeouts,
    source: str = "benchmark",
    region: str = "default",
    run_id: str | None = None,
    prompt: str | None = None,
) -> Sample:
    """Stream one request and measure it. Never raises for anything the provider does: failures come back as a
    sample with ``ok=False`` and the cause in ``error``."""
    body = {"messages": messages, "max_tokens": max_tokens, "temperature": 0, "stream": True}
    base: dict[str, Any] = {"endpoint": endpoint.name, "source": source, "region": region}
    base |= {"run_id": run_id, "prompt": prompt}
    loop = asyncio.get_running_loop()
    start = loop.time()
    times: list[float] = []
    texts: list[str] = []
    usage: dict[str, Any] | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(timeouts.first_token_s) as deadline:
            gen = provider.stream(upstream, body, timeouts)
            try:
                async for chunk in gen:
                    now = loop.time()
                    if isinstance(chunk.get("usage"), dict):
                        usage = chunk["usage"]
                    text = _content(chunk)
                    if text:
                        if not times:
                            deadline.reschedule(start + timeouts.total_s)
                        times.append(now)
                        texts.append(text)
            finally:
                await gen.aclose()  # type: ignore[attr-defined]
    except TimeoutError:
        if times:
            error = f"timeout: the stream took longer than the total timeout of {timeouts.total_s:g}s"
        else:
            error = f"timeout: no first token within {timeouts.first_token_s:g}s"
    except MissingKeyError as exc:
        error = f"missing_key: {exc.message}"
    except UpstreamError as exc:
        error = f"{exc.code or 'upstream_error'}: {exc.message}"
    duration_ms = (loop.time() - start) * 1000
    reported = usage is not None and usage.get("completion_tokens") is not None
    input_tokens = int(usage.get("prompt_tokens") or 0) if reported and usage else None
    output_tokens = int(usage["completion_tokens"]) if reported and usage else None
    cost = endpoint.cost_usd(input_tokens or 0, output_tokens or 0) if reported else None
    if output_tokens is None and texts:
        output_tokens = estimate_tokens("".join(texts))
    common = {**base, "usage_reported": reported, "input_tokens": input_tokens, "cost_usd": cost}
    common["output_tokens"] = output_tokens
    if error is None and not times:
        error = "no tokens streamed: the stream ended without any content"
    if error is not None:
        return Sample(ok=False, error=error, duration_ms=duration_ms, **common)
    gaps = [(b - a) * 1000 for a, b in itertools.pairwise(times)]
    span = times[-1] - times[0]
    tokens_per_s = (output_tokens - 1) / span if output_tokens and output_tokens > 1 and span > 0 else None
    return Sample(
        ok=True,
        ttft_ms=(times[0] - start) * 1000,
        itl_ms=sum(gaps) / len(gaps) if gaps else None,
        itl_p90_ms=quantile(gaps, 0.9) if gaps else None,
        tokens_per_s=tokens_per_s,
        duration_ms=duration_ms,
        **common,
    )


def check_plan(plan: BenchPlan) -> None:
    """Refuse a plan whose worst-case cost is above its budget, or that has no endpoint."""
    config = plan.config
    if plan.estimate_usd > config.budget_usd:
        raise InvalidRequestError(
            f"the benchmark could cost up to ${plan.estimate_usd:.6f}, above its budget of ${config.budget_usd}; "
            "raise --budget, or lower --repeats, --max-tokens or the number of --endpoints"
        )
    if not plan.endpoints:
        raise InvalidRequestError(
            "no endpoint to benchmark: every enabled endpoint needs an API key that is not set "
            f"({'; '.join(sorted(set(plan.skipped.values())))}); set a key or name endpoints with --endpoints"
        )


async def run_scheduled(
    plan: BenchPlan, store: StatsStore, providers: dict[str, Provider] | None = None, *, interval_s: float
) -> BenchResult | None:
    """Run ``plan`` unless another process already started a run of its region in the last ``interval_s``
    (then None): what a scheduler calls, so replicas sharing a store share one schedule."""
    check_plan(plan)
    run = await asyncio.to_thread(
        store.claim_run,
        region=plan.config.region,
        endpoints=len(plan.endpoints),
        planned_requests=plan.requests,
        estimate_usd=plan.estimate_usd,
        budget_usd=plan.config.budget_usd,
        unless_started_within_s=interval_s * 0.99,  # the scheduler's own wake-up may be a hair early
    )
    if run is None:
        return None
    return await run_benchmark(plan, store, providers, run=run)


async def run_benchmark(
    plan: BenchPlan,
    store: StatsStore,
    providers: dict[str, Provider] | None = None,
    *,
    on_sample: Callable[[Sample], None] | None = None,
    run: RunInfo | None = None,
) -> BenchResult:
    """Run ``plan``, store its run and samples, and return them. ``providers`` (API style → adapter) default to
    fresh adapters over one HTTP client for this run. A plan whose estimate exceeds the budget is refused
    before anything is sent. ``run``: an already recorded run to fill (see ``run_scheduled``)."""
    config = plan.config
    check_plan(plan)
    if run is None:
        run = await asyncio.to_thread(
            store.start_run,
            region=config.region,
            endpoints=len(plan.endpoints),
            planned_requests=plan.requests,
            estimate_usd=plan.estimate_usd,
            budget_usd=config.budget_usd,
        )
    run_id = run.id
    client: httpx.AsyncClient | None = None
    if providers is None:
        from pointsman.providers.registry import build_providers

        client = httpx.AsyncClient(timeout=config.timeouts.httpx_timeout(), trust_env=False)
        providers = build_providers(client)
    semaphore = asyncio.Semaphore(config.concurrency)
    committed = Decimal(0)  # spent so far plus the worst case of requests in flight
    samples: list[Sample] = []

    async def one(endpoint: Endpoint, prompt: str) -> None:
        nonlocal committed
        worst = plan.worst_case_usd(endpoint, prompt)
        async with semaphore:
            if committed + worst > config.budget_usd:
                sample = Sample(
                    endpoint.name,
                    "benchmark",
                    False,
                    config.region,
                    run_id=run_id,
                    prompt=prompt,
                    error=BUDGET_SKIP,
                )
            else:
                committed += worst
                sample = await measure_stream(
                    providers[endpoint.api_style],
                    upstream_for(endpoint),
                    endpoint,
                    prompt_messages(prompt),
                    max_tokens=config.max_tokens,
                    timeouts=config.timeouts,
                    region=config.region,
                    run_id=run_id,
                    prompt=prompt,
                )
                # What it cost when the provider said; the worst case when it did not.
                committed += (sample.cost_usd if sample.cost_usd is not None else worst) - worst
        samples.append(sample)
        if on_sample is not None:
            on_sample(sample)

    status, note = "done", None
    try:
        jobs = [one(e, p) for _ in range(config.repeats) for e in plan.endpoints for p in config.prompts]
        await asyncio.gather(*jobs)
    except BaseException as exc:
        status, note = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if client is not None:
            await client.aclose()
        cost = sum((s.cost_usd for s in samples if s.cost_usd is not None), Decimal(0))
        failures = sum(1 for s in samples if not s.ok)
        if failures and note is None:
            note = f"{failures} of {len(samples)} request(s) failed"
        await asyncio.shield(asyncio.to_thread(store.add_samples, samples))
        finished = await asyncio.shield(
            asyncio.to_thread(store.finish_run, run_id, status=status, cost_usd=cost, note=note)
        )
    return BenchResult(finished, sorted(samples, key=lambda s: (s.endpoint, s.prompt or "", s.created_at)))
