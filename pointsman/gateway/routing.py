"""From a request's ``model`` field to the ranked endpoints the fallback engine walks.

``model`` may be an endpoint (``model@provider``), a fallback chain of endpoints (``a@p->b@q``), a router
string (``router@q:1|c:0.01``), a chain mixing both, or a bare model name. Chains of explicit endpoints need no
scorer and are resolved inline (a cached parse and catalogue lookups). Everything else goes to the ranker —
the scorer plus the objective — which runs in a thread pool so the event loop keeps serving other streams.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pointsman.router_string import parse_router_string

if TYPE_CHECKING:
    from pointsman.catalog import Catalog, Endpoint

__all__ = ["Choice", "Ranker", "Resolution", "Resolver"]


@dataclass(frozen=True)
class Choice:
    """One ranked endpoint and why (score terms, JSON-ready) for ``x-pointsman-explain``."""

    endpoint: Endpoint
    explain: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resolution:
    choices: list[Choice]
    router: str  # the request's model field, normalised
    scorer_s: float = 0.0  # time spent ranking (0 for explicit endpoints)
    details: Mapping[str, Any] = field(default_factory=dict)  # the ranker's full ranking, notes, scorer

    def explain(self) -> list[dict[str, Any]]:
        return [{"endpoint": c.endpoint.name, **c.explain} for c in self.choices]


# (messages, the model field, max_tokens or None) -> (the endpoints to try, best first; details for
# explanations). Blocking; runs in the executor.
Ranker = Callable[[Sequence[Mapping[str, Any]], str, int | None], tuple[list[Choice], dict[str, Any]]]


class Resolver:
    """Resolves ``model`` fields against one catalogue; ``ranker`` handles anything needing a scorer."""

    def __init__(self, catalog: Catalog, ranker: Ranker | None, executor: Executor | None) -> None:
        self.catalog = catalog
        self.ranker = ranker
        self.executor = executor
        self._explicit = functools.lru_cache(maxsize=4096)(self._explicit_chain)

    def _explicit_chain(self, model: str) -> tuple[Endpoint, ...] | None:
        """The endpoints of a chain made only of ``model@provider`` links, else None (needs ranking)."""
        spec = parse_router_string(model)
        names: list[str] = []
        for step in spec.chain:
            name = getattr(step, "endpoint", None)
            if not isinstance(name, str):
                return None
            names.append(name)
        return tuple(self.catalog.endpoint(name) for name in names)

    def explicit(self, model: str) -> Resolution | None:
        """Resolve without a scorer when ``model`` names endpoints only."""
        endpoints = self._explicit(model)
        if endpoints is None:
            return None
        reason = {"reason": "named in the request"}
        return Resolution([Choice(e, reason) for e in endpoints], model)

    async def resolve(
        self, model: str, messages: Sequence[Mapping[str, Any]], max_tokens: int | None = None
    ) -> Resolution:
        found = self.explicit(model)
        if found is not None:
            return found
        if self.ranker is None:
            from pointsman.errors import ConfigError

            raise ConfigError(
                f"{model!r} needs the router (scorer and objective), which this gateway was started without; "
                "name an endpoint as model@provider, or start the gateway with a ranker"
            )
        start = time.perf_counter()
        loop = asyncio.get_running_loop()
        choices, details = await loop.run_in_executor(self.executor, self.ranker, messages, model, max_tokens)
        return Resolution(choices, model, time.perf_counter() - start, details)
