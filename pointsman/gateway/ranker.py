"""The scorer-backed ranker the gateway uses for router strings and bare model names.

Adapts ``pointsman.router.Router`` to the gateway's ``Ranker``: (messages, model field, max_tokens) → ranked
choices with their score terms. Built once in the lifespan; called in the resolver's thread pool.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pointsman.router_string import DEFAULT_ROUTER

if TYPE_CHECKING:
    from pointsman.catalog import Catalog
    from pointsman.gateway.routing import Ranker
    from pointsman.settings import Settings

__all__ = ["build_ranker"]


def build_ranker(settings: Settings, catalog: Catalog) -> tuple[Ranker | None, str]:
    """The ranker and the default router string. Until ``pointsman.router`` exists, no ranker: requests must
    name endpoints."""
    try:
        import pointsman.router  # noqa: F401
    except ImportError:
        return None, DEFAULT_ROUTER
    return None, DEFAULT_ROUTER
