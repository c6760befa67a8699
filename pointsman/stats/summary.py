"""Per-endpoint summaries of samples, for ``pointsman bench run`` and ``pointsman bench show``."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pointsman.stats.figures import quantile
from pointsman.stats.store import Sample

__all__ = ["EndpointSummary", "summarize"]


@dataclass(frozen=True)
class EndpointSummary:
    endpoint: str
    requests: int
    ok: int
    ttft_p50_ms: float | None
    ttft_p90_ms: float | None
    itl_mean_ms: float | None  # median over requests of each request's mean gap
    itl_p90_ms: float | None  # median over requests of each request's P90 gap
    tokens_per_s: float | None  # median
    output_tokens: int
    cost_usd: Decimal
    no_usage: int  # usable requests whose provider reported no usage
    top_error: str | None  # the most frequent failure, with its count

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["cost_usd"] = str(self.cost_usd)
        return out


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(samples: Sequence[Sample]) -> list[EndpointSummary]:
    """One summary per endpoint, sorted by name."""
    grouped: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        grouped[s.endpoint].append(s)
    out = []
    for endpoint in sorted(grouped):
        mine = grouped[endpoint]
        ok = [s for s in mine if s.ok]
        ttfts = [s.ttft_ms for s in ok if s.ttft_ms is not None]
        errors = Counter((s.error or "unknown").split(": ", 1)[0] for s in mine if not s.ok)
        top = errors.most_common(1)
        out.append(
            EndpointSummary(
                endpoint=endpoint,
                requests=len(mine),
                ok=len(ok),
                ttft_p50_ms=quantile(ttfts, 0.5) if ttfts else None,
                ttft_p90_ms=quantile(ttfts, 0.9) if ttfts else None,
                itl_mean_ms=_median([s.itl_ms for s in ok if s.itl_ms is not None]),
                itl_p90_ms=_median([s.itl_p90_ms for s in ok if s.itl_p90_ms is not None]),
                tokens_per_s=_median([s.tokens_per_s for s in ok if s.tokens_per_s is not None]),
                output_tokens=sum(s.output_tokens or 0 for s in mine),
                cost_usd=sum((s.cost_usd for s in mine if s.cost_usd is not None), Decimal(0)),
                no_usage=sum(1 for s in ok if not s.usage_reported),
                top_error=f"{top[0][0]} ×{top[0][1]}" if top else None,
            )
        )
    return out
