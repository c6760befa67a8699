"""The scorer-backed ranker the gateway uses for router strings and bare model names.

Adapts ``pointsman.router.Router`` to the gateway's ``Ranker``: (messages, model field, max_tokens) → the
endpoints to try, best first, each with its score terms, plus the full ranking for explanations. Built once in
the lifespan and warmed there (the neural scorer loads before the first request); called in the resolver's
thread pool (``Router`` is synchronous and runs the neural scorer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pointsman.gateway.routing import Choice, Ranker
from pointsman.router_string import DEFAULT_ROUTER

if TYPE_CHECKING:
    from pointsman.catalog import Catalog
    from pointsman.config import Config
    from pointsman.latency import LatencySource
    from pointsman.router import Router
    from pointsman.scorer.base import Scorer

__all__ = ["build_ranker", "ranker_from_router"]


def ranker_from_router(router: Router, depth: int) -> Ranker:
    """A ``Ranker`` over ``router``: its plan (up to ``depth`` endpoints, or one per link of a chain)."""
    catalog = router.catalog

    def rank(
        messages: Sequence[Mapping[str, Any]], model: str, max_tokens: int | None
    ) -> tuple[list[Choice], dict[str, Any]]:
        ranking = router.rank(messages, model, max_tokens=max_tokens, max_attempts=depth)
        choices = []
        for ranked in ranking.plan:
            explain = ranked.to_dict()
            explain.pop("endpoint")
            choices.append(Choice(catalog.endpoint_table[ranked.endpoint], explain))
        details = {
            "scorer": ranking.scorer,
            "prompt_tokens": ranking.prompt_tokens,
            "notes": list(ranking.notes),
            "ranked": [r.to_dict() for r in ranking.ranked],
        }
        return choices, details

    return rank


def build_ranker(
    catalog: Catalog,
    config: Config,
    depth: int,
    *,
    latency: LatencySource | None = None,
    torch_threads: int | None = None,
) -> tuple[Ranker, str, Callable[[], None]]:
    """The ranker over the config's scorer (``[routing] scorer``, default the shipped neural one) and default
    router, that router string, and the scorer's ``warm`` (blocking: loads torch and MiniLM and runs one
    prediction; the lifespan runs it in the scorer's thread pool before serving).
    ``latency``: where TTFT/ITL come from (default: catalogue priors). ``torch_threads``: set when a neural
    scorer loads (``router@neural`` too, when the configured scorer is another)."""
    from pointsman.router import Router
    from pointsman.scorer.default import DEFAULT_SCORER_NAME, scorer_by_name

    default = config.routing.default_router or DEFAULT_ROUTER
    scorer = scorer_by_name(config.routing.scorer, torch_threads=torch_threads)
    named: dict[str, Scorer] = {}
    if getattr(scorer, "name", None) != DEFAULT_SCORER_NAME:  # lazy: no torch unless a request names it
        named[DEFAULT_SCORER_NAME] = scorer_by_name(DEFAULT_SCORER_NAME, torch_threads=torch_threads)
    router = Router(catalog=catalog, scorer=scorer, latency=latency, scorers=named, default_router=default)
    return ranker_from_router(router, depth), default, scorer.warm
