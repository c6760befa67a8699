"""The objective: filter candidate endpoints and rank them by one score. Pure functions, no I/O.

    score = q·(quality − risk·uncertainty) − c·cost − ic·input_cost − oc·output_cost − t·TTFT − i·ITL

Units (Unify's): quality on 0..1 (the scorer's default scale); cost in USD per 1M tokens, where ``cost`` is
the list price blended 3:1 input:output (the prompt's own token counts are *not* used in the score, so the
same weights mean the same trade-off for short and long prompts; the per-request estimate is reported
separately as ``request_cost_usd``); ``input_cost`` and ``output_cost`` are the two list prices; TTFT and ITL
in milliseconds.

Filters run in this order and the first one that leaves nothing is named in ``NoCandidatesError``: the search
space (``models``, ``skip_models``, ``providers``, ``skip_providers``), the context window (prompt tokens plus
the requested ``max_tokens`` must fit), the endpoint's output limit, then each threshold in the order written.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pointsman.errors import NoCandidatesError
from pointsman.router_string import EndpointStep, RouterSpec, RouterStep, Threshold, Weights

if TYPE_CHECKING:
    from pointsman.catalog import Endpoint
    from pointsman.latency import LatencyFigure

__all__ = [
    "DEFAULT_OUTPUT_TOKENS",
    "Candidate",
    "RankedEndpoint",
    "Term",
    "as_router_step",
    "metric_value",
    "rank",
]

DEFAULT_OUTPUT_TOKENS = (
    256  # answer length assumed for the per-request cost estimate when max_tokens is unset
)

_UNITS = {
    "quality": "",
    "cost": " USD/1M tokens (3:1 blend)",
    "input_cost": " USD/1M input tokens",
    "output_cost": " USD/1M output tokens",
    "ttft": " ms",
    "itl": " ms",
}


@dataclass(frozen=True)
class Candidate:
    """An endpoint with its predicted quality and latency, ready to be ranked."""

    endpoint: Endpoint
    quality: float
    uncertainty: float | None
    latency: LatencyFigure
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Term:
    """One weighted term of the score: ``contribution = sign·weight·value`` (quality adds, the rest subtract)."""

    metric: str
    weight: float
    value: float
    contribution: float


@dataclass(frozen=True)
class RankedEndpoint:
    """A ranked endpoint and the reason for its score (``terms``) and for any figure not measured (``flags``)."""

    endpoint: str
    model: str
    provider: str
    quality: float
    uncertainty: float | None
    cost: float  # USD per 1M tokens, 3:1 blend
    input_cost: float
    output_cost: float
    request_cost_usd: float  # estimate for this prompt: its tokens plus the expected answer length
    ttft_ms: float
    itl_ms: float
    score: float
    terms: tuple[Term, ...]
    flags: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "provider": self.provider,
            "quality": self.quality,
            "uncertainty": self.uncertainty,
            "cost": self.cost,
            "input_cost": self.input_cost,
            "output_cost": self.output_cost,
            "request_cost_usd": self.request_cost_usd,
            "ttft_ms": self.ttft_ms,
            "itl_ms": self.itl_ms,
            "score": self.score,
            "terms": {t.metric: t.contribution for t in self.terms},
            "flags": list(self.flags),
        }


def as_router_step(step: RouterStep | EndpointStep | RouterSpec) -> RouterStep:
    """Any link as a ``RouterStep``: ``model@provider`` is a search space of one endpoint, ``model@meta`` a
    meta-provider over one model's endpoints, a bare ``model`` the default weights over its endpoints."""
    if isinstance(step, RouterSpec):
        step = step.primary
    if isinstance(step, RouterStep):
        return step
    return RouterStep(
        models=(step.model,),
        providers=(step.provider,) if step.provider is not None else None,
        meta=step.meta,
    )


def metric_value(candidate: Candidate, metric: str) -> float:
    """The value of ``metric`` for a candidate, in the objective's units."""
    e = candidate.endpoint
    if metric == "quality":
        return candidate.quality
    if metric == "cost":
        return float(e.blended_usd_per_mtok())
    if metric == "input_cost":
        return float(e.input_usd_per_mtok)
    if metric == "output_cost":
        return float(e.output_usd_per_mtok)
    if metric == "ttft":
        return candidate.latency.ttft_ms
    if metric == "itl":
        return candidate.latency.itl_ms
    raise ValueError(f"unknown metric {metric!r}")


def _filter(
    pool: list[Candidate],
    keep: Callable[[Candidate], bool],
    label: str,
    detail: Callable[[list[Candidate]], str],
) -> list[Candidate]:
    kept = [c for c in pool if keep(c)]
    if not kept:
        raise NoCandidatesError(f"no endpoint is left after the {label}: {detail(pool)}", param="model")
    return kept


def _threshold_detail(threshold: Threshold) -> Callable[[list[Candidate]], str]:
    def detail(pool: list[Candidate]) -> str:
        values = sorted((metric_value(c, threshold.metric), c.endpoint.name) for c in pool)
        lo, lo_name = values[0]
        hi, hi_name = values[-1]
        unit = _UNITS[threshold.metric]
        return (
            f"{len(pool)} endpoint(s) passed the filters before it, with {threshold.metric} from "
            f"{lo:g}{unit} ({lo_name}) to {hi:g}{unit} ({hi_name}); loosen the bound"
        )

    return detail


def rank(
    candidates: Sequence[Candidate],
    spec: RouterStep | EndpointStep | RouterSpec,
    *,
    default_weights: Weights,
    prompt_tokens: int = 0,
    max_output_tokens: int | None = None,
) -> list[RankedEndpoint]:
    """Filter ``candidates`` by the step's search space, context windows and thresholds, then rank them by
    score, best first (ties: higher quality, then lower cost, then name). Nothing left → ``NoCandidatesError``
    naming the filter that emptied the set."""
    step = as_router_step(spec)
    weights = step.effective_weights(default_weights)
    pool = list(candidates)
    if not pool:
        raise NoCandidatesError("no candidate endpoints to rank (the catalogue offered none)", param="model")

    def names(values: Sequence[str]) -> str:
        return ",".join(values)

    if step.models is not None:
        wanted = set(step.models)
        pool = _filter(
            pool,
            lambda c: c.endpoint.model in wanted,
            f"search space models:{names(step.models)}",
            lambda p: (
                "no candidate serves those models; known: " + ", ".join(sorted({c.endpoint.model for c in p}))
            ),
        )
    if step.providers is not None:
        wanted_p = set(step.providers)
        pool = _filter(
            pool,
            lambda c: c.endpoint.provider in wanted_p,
            f"search space providers:{names(step.providers)}",
            lambda p: (
                "none of the remaining endpoints is on those providers; they are on "
                + names(sorted({c.endpoint.provider for c in p}))
            ),
        )
    if step.skip_models:
        skip = set(step.skip_models)
        pool = _filter(
            pool,
            lambda c: c.endpoint.model not in skip,
            f"skip_models:{names(step.skip_models)}",
            lambda p: "every remaining endpoint serves a skipped model",
        )
    if step.skip_providers:
        skip_p = set(step.skip_providers)
        pool = _filter(
            pool,
            lambda c: c.endpoint.provider not in skip_p,
            f"skip_providers:{names(step.skip_providers)}",
            lambda p: "every remaining endpoint is on a skipped provider",
        )
    needed = prompt_tokens + (max_output_tokens or 1)
    pool = _filter(
        pool,
        lambda c: c.endpoint.context_window >= needed,
        "context-window filter",
        lambda p: (
            f"the prompt needs about {prompt_tokens} tokens plus {max_output_tokens or 1} for the answer, "
            f"and the largest window among {len(p)} endpoint(s) is "
            f"{max(c.endpoint.context_window for c in p)} ({max(p, key=lambda c: c.endpoint.context_window).endpoint.name}); "
            "shorten the prompt or allow models with longer context"
        ),
    )
    if max_output_tokens is not None:
        pool = _filter(
            pool,
            lambda c: (
                c.endpoint.max_output_tokens is None or c.endpoint.max_output_tokens >= max_output_tokens
            ),
            "output-limit filter",
            lambda p: (
                f"max_tokens={max_output_tokens} is above every endpoint's output limit; lower max_tokens"
            ),
        )
    for threshold in step.thresholds:
        pool = _filter(
            pool,
            lambda c, th=threshold: th.admits(metric_value(c, th.metric)),  # type: ignore[misc]
            f"threshold {threshold.to_string()!r}",
            _threshold_detail(threshold),
        )

    answer_tokens = max_output_tokens if max_output_tokens is not None else DEFAULT_OUTPUT_TOKENS
    ranked = [_score(c, weights, step.risk, prompt_tokens, answer_tokens) for c in pool]
    ranked.sort(key=lambda r: (-r.score, -r.quality, r.cost, r.ttft_ms, r.endpoint))
    return ranked


def _score(
    c: Candidate, weights: Weights, risk: float, prompt_tokens: int, answer_tokens: int
) -> RankedEndpoint:
    flags = list(c.flags)
    terms: list[Term] = []
    if weights.quality:
        value = c.quality
        if risk:
            if c.uncertainty is None:
                flags.append("uncertainty: unknown, risk ignored")
            else:
                value = c.quality - risk * c.uncertainty
        terms.append(Term("quality", weights.quality, value, weights.quality * value))
    for metric in ("cost", "input_cost", "output_cost", "ttft", "itl"):
        weight = getattr(weights, metric)
        if weight:
            value = metric_value(c, metric)
            terms.append(Term(metric, weight, value, -weight * value))
    lat = c.latency
    if lat.is_prior:
        flags.extend(("ttft: catalogue prior", "itl: catalogue prior"))
    elif lat.stale:
        flags.append(f"latency: stale {lat.source} figure")
    e = c.endpoint
    request_cost = e.cost_usd(prompt_tokens, answer_tokens)
    return RankedEndpoint(
        endpoint=e.name,
        model=e.model,
        provider=e.provider,
        quality=c.quality,
        uncertainty=c.uncertainty,
        cost=float(e.blended_usd_per_mtok()),
        input_cost=float(e.input_usd_per_mtok),
        output_cost=float(e.output_usd_per_mtok),
        request_cost_usd=float(request_cost.quantize(Decimal("1e-9"))),
        ttft_ms=lat.ttft_ms,
        itl_ms=lat.itl_ms,
        score=sum(t.contribution for t in terms),
        terms=tuple(terms),
        flags=tuple(flags),
    )
