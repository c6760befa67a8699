"""Where TTFT and ITL figures come from: one protocol, and the catalogue's priors as its first implementation.

Until live benchmarks exist, latency comes from the catalogue (``ttft_prior_ms``, ``itl_prior_ms``), flagged
as priors wherever it is shown. A benchmark- or traffic-backed source implements the same ``LatencySource``
protocol and returns figures with ``source`` set accordingly (and ``stale`` when its newest sample is old).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pointsman.catalog import Endpoint

__all__ = ["CatalogPriors", "LatencyFigure", "LatencySource"]


@dataclass(frozen=True)
class LatencyFigure:
    """Time to first token and inter-token latency of one endpoint, in milliseconds, and where they came
    from (``"prior"``, ``"benchmark"``, ``"traffic"`` ...)."""

    ttft_ms: float
    itl_ms: float
    source: str
    stale: bool = False
    note: str | None = None

    def __post_init__(self) -> None:
        assert self.ttft_ms >= 0 and self.itl_ms >= 0, f"latency cannot be negative: {self}"

    @property
    def is_prior(self) -> bool:
        return self.source == "prior"


@runtime_checkable
class LatencySource(Protocol):
    """Gives a latency figure for each endpoint it knows; endpoints it omits fall back to catalogue priors."""

    def figures(self, endpoints: Sequence[Endpoint]) -> dict[str, LatencyFigure]: ...


class CatalogPriors:
    """Latency from the catalogue's priors (every endpoint has one)."""

    def figures(self, endpoints: Sequence[Endpoint]) -> dict[str, LatencyFigure]:
        return {
            e.name: LatencyFigure(
                ttft_ms=e.ttft_prior_ms, itl_ms=e.itl_prior_ms, source="prior", note="catalogue prior"
            )
            for e in endpoints
        }
