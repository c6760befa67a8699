"""Pointsman: send each prompt to the LLM endpoint (model@provider) that serves it best.

The public, in-process API::

    from pointsman import Router, load_catalog
    router = Router(catalog=load_catalog())                   # shipped catalogue, default scorer
    ranking = router.rank("What is the largest of 3, 9 and 4?", "router@q:1|c:0.05")
    ranking.chosen.endpoint, [r.endpoint for r in ranking.plan]

Names are imported lazily so ``import pointsman`` stays cheap (no torch, no catalogue read).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ROUTER",
    "Catalog",
    "CatalogPriors",
    "Endpoint",
    "LatencyFigure",
    "LatencySource",
    "PointsmanError",
    "RankedEndpoint",
    "Ranking",
    "Router",
    "RouterSpec",
    "count_message_tokens",
    "estimate_tokens",
    "load_catalog",
    "parse_router_string",
    "rank",
]

_WHERE = {
    "DEFAULT_ROUTER": "pointsman.router_string",
    "Catalog": "pointsman.catalog",
    "CatalogPriors": "pointsman.latency",
    "Endpoint": "pointsman.catalog",
    "LatencyFigure": "pointsman.latency",
    "LatencySource": "pointsman.latency",
    "PointsmanError": "pointsman.errors",
    "RankedEndpoint": "pointsman.objective",
    "Ranking": "pointsman.router",
    "Router": "pointsman.router",
    "RouterSpec": "pointsman.router_string",
    "count_message_tokens": "pointsman.tokens",
    "estimate_tokens": "pointsman.tokens",
    "load_catalog": "pointsman.catalog",
    "parse_router_string": "pointsman.router_string",
    "rank": "pointsman.objective",
}

if TYPE_CHECKING:
    from pointsman.catalog import Catalog, Endpoint, load_catalog
    from pointsman.errors import PointsmanError
    from pointsman.latency import CatalogPriors, LatencyFigure, LatencySource
    from pointsman.objective import RankedEndpoint, rank
    from pointsman.router import Ranking, Router
    from pointsman.router_string import DEFAULT_ROUTER, RouterSpec, parse_router_string
    from pointsman.tokens import count_message_tokens, estimate_tokens


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'pointsman' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
