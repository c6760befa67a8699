"""Prometheus metrics for one gateway app, in the app's own registry (no module-level globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

__all__ = ["GatewayMetrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class GatewayMetrics:
    """Requests, errors, attempts, retries, fallbacks, upstream latency, scorer latency and gateway overhead."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "pointsman_requests",
            "Requests answered, by route and HTTP status.",
            ["route", "status"],
            registry=r,
        )
        self.errors = Counter("pointsman_errors", "Errors answered, by error code.", ["code"], registry=r)
        self.attempts = Counter(
            "pointsman_upstream_attempts",
            "Upstream attempts, by endpoint and outcome (ok, or the error code).",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.retries = Counter("pointsman_retries", "Retries of the same endpoint.", ["endpoint"], registry=r)
        self.fallbacks = Counter(
            "pointsman_fallbacks",
            "Moves to the next endpoint after one failed.",
            ["from_endpoint"],
            registry=r,
        )
        self.stream_errors = Counter(
            "pointsman_stream_errors",
            "Streams ended by an upstream failure after the first token.",
            ["endpoint"],
            registry=r,
        )
        self.upstream_latency = Histogram(
            "pointsman_upstream_first_token_seconds",
            "Upstream time to the first token (streams) or to the whole reply.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.scorer_latency = Histogram(
            "pointsman_scorer_seconds", "Time spent ranking candidates.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.overhead = Histogram(
            "pointsman_overhead_seconds",
            "Gateway time before the upstream request is sent (parsing, auth, ranking, reservation).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
