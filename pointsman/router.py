"""The in-process router: prompt + router string → ranked endpoints and the chain to try.

    >>> from pointsman import Router
    >>> ranking = Router().rank("What is the largest of 3, 9 and 4?", "router@q:1|c:0.05")
    >>> ranking.chosen.endpoint                                  # doctest: +SKIP
    'gpt-4-1106-preview@openai'

The gateway, the CLI and library users all go through ``Router``; the decision itself is made once, in
``pointsman.objective.rank``. ``Router`` is synchronous (the gateway runs it in a worker thread).

Which text is scored: a plain string as is; for chat messages, the last user message's text (the turn being
answered). Token counts for the context-window filter and the cost estimate cover the whole conversation.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pointsman.catalog import Catalog, Endpoint, load_catalog
from pointsman.errors import ConfigError, NoCandidatesError, UnknownNameError
from pointsman.latency import CatalogPriors, LatencyFigure, LatencySource
from pointsman.objective import Candidate, RankedEndpoint, as_router_step, rank
from pointsman.router_string import (
    DEFAULT_ROUTER,
    EndpointStep,
    RouterSpec,
    RouterStep,
    Weights,
    parse_router_string,
)
from pointsman.scorer.base import Prediction, Scorer
from pointsman.scorer.default import SCORER_CHOICES, scorer_by_name
from pointsman.tokens import count_message_tokens

__all__ = ["DEFAULT_MAX_ATTEMPTS", "Prompt", "Ranking", "Router", "prompt_text"]

Prompt = str | Sequence[Mapping[str, Any]]
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Ranking:
    """The result of ranking one prompt.

    ``ranked``: every surviving endpoint of the first link that had candidates, best first.
    ``plan``: the endpoints to try in order (the chosen one first, then fallbacks).
    ``notes``: human-readable remarks (where figures came from, links that had no candidates)."""

    spec: RouterSpec
    ranked: list[RankedEndpoint]
    plan: list[RankedEndpoint]
    notes: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    scorer: str = ""

    @property
    def chosen(self) -> RankedEndpoint:
        return self.plan[0]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape: ``{"ranked": [{endpoint, quality, cost, ttft_ms, itl_ms, score, ...}],
        "chosen": "model@provider", ...}``."""
        return {
            "ranked": [r.to_dict() for r in self.ranked],
            "chosen": self.chosen.endpoint,
            "plan": [r.endpoint for r in self.plan],
            "router": self.spec.to_string(),
            "scorer": self.scorer,
            "prompt_tokens": self.prompt_tokens,
            "notes": list(self.notes),
        }


def prompt_text(prompt: Prompt) -> str:
    """The text a scorer sees: the string itself, or the last user message's text parts."""
    if isinstance(prompt, str):
        return prompt
    for message in reversed(prompt):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, Sequence):
                return "\n".join(
                    str(p.get("text", ""))
                    for p in content
                    if isinstance(p, Mapping) and p.get("type") == "text"
                )
    return ""


def _prompt_tokens(prompt: Prompt) -> int:
    if isinstance(prompt, str):
        return count_message_tokens([{"role": "user", "content": prompt}])
    return count_message_tokens(prompt)


class Router:
    """Ranks the catalogue's endpoints for a prompt.

    ``catalog``: default ``load_catalog()`` (the shipped catalogue; pass ``load_catalog(path)`` for a config).
    ``scorer``: default ``pointsman.scorer.default.default_scorer()``.
    ``latency``: default ``CatalogPriors()``; endpoints it has no figure for fall back to catalogue priors.
    ``scorers``: scorers (or custom routers) by name, for ``router@NAME|...``; ``load_scorer`` is asked for
    names not in it. ``default_router``: used when ``rank`` gets no router string."""

    def __init__(
        self,
        catalog: Catalog | None = None,
        scorer: Scorer | None = None,
        latency: LatencySource | None = None,
        *,
        scorers: Mapping[str, Scorer] | None = None,
        load_scorer: Callable[[str], Scorer] | None = None,
        default_router: str | RouterSpec = DEFAULT_ROUTER,
    ) -> None:
        if scorer is None:
            scorer = scorer_by_name(None)
        self.catalog = catalog if catalog is not None else load_catalog()
        self.scorer = scorer
        self.latency: LatencySource = latency if latency is not None else CatalogPriors()
        self._scorers = dict(scorers or {})
        self._load_scorer = load_scorer
        self.default_spec = self._spec(default_router)
        primary = self.default_spec.primary
        if not isinstance(primary, RouterStep) or len(self.default_spec.chain) != 1:
            raise ConfigError(
                f"the default router must be a single 'router@...' link, got {self.default_spec.to_string()!r}; "
                f"e.g. {DEFAULT_ROUTER!r}"
            )
        self.default_step = primary
        self.default_weights: Weights = primary.effective_weights(Weights(quality=1.0))

    @staticmethod
    def _spec(router: str | RouterSpec) -> RouterSpec:
        return router if isinstance(router, RouterSpec) else parse_router_string(router)

    def _scorer_for(self, name: str | None) -> Scorer:
        if name is None or name == getattr(self.scorer, "name", None):
            return self.scorer
        if name in self._scorers:
            return self._scorers[name]
        if self._load_scorer is not None:
            found = self._load_scorer(name)
            self._scorers[name] = found
            return found
        if name in SCORER_CHOICES:
            self._scorers[name] = scorer_by_name(name)
            return self._scorers[name]
        from pointsman.custom.registry import deployed_names, find_deployed

        deployed = find_deployed(name)  # cached by the registry, reloaded on redeploy
        if deployed is not None:
            return deployed
        known = {*SCORER_CHOICES, *self._scorers, *deployed_names()}
        if hasattr(self.scorer, "name"):
            known.add(self.scorer.name)
        raise UnknownNameError("router", name, known, param="model")

    def rank(
        self,
        prompt: Prompt,
        router: str | RouterSpec | None = None,
        *,
        max_tokens: int | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> Ranking:
        """Rank endpoints for ``prompt`` under ``router`` (default: this router's default).

        Each link of a fallback chain is resolved in order; a link the filters empty is skipped with a note
        when another link can still answer (otherwise its ``NoCandidatesError`` is raised). One link: the plan
        is its top ``max_attempts`` endpoints. A chain: each link's best endpoint, in order, without repeats."""
        spec = self.default_spec if router is None else self._spec(router)
        tokens = _prompt_tokens(prompt)
        text = prompt_text(prompt)
        notes: list[str] = []
        ranked_per_link: list[list[RankedEndpoint]] = []
        first_error: NoCandidatesError | None = None
        scorer_names: list[str] = []
        for index, link in enumerate(spec.chain):
            try:
                ranked, scorer_name = self._rank_link(link, text, tokens, max_tokens, notes)
            except NoCandidatesError as exc:
                if len(spec.chain) == 1:
                    raise
                first_error = first_error or exc
                notes.append(f"link {index + 1} ({link.to_string()}) skipped: {exc.message}")
                continue
            ranked_per_link.append(ranked)
            scorer_names.append(scorer_name)
        if not ranked_per_link:
            assert first_error is not None
            raise first_error
        if len(spec.chain) == 1:
            plan = ranked_per_link[0][: max(1, max_attempts)]
        else:
            plan = []
            seen: set[str] = set()
            for ranked in ranked_per_link:
                if ranked[0].endpoint not in seen:
                    seen.add(ranked[0].endpoint)
                    plan.append(ranked[0])
        priors = sum(1 for r in ranked_per_link[0] if "ttft: catalogue prior" in r.flags)
        if priors:
            notes.append(f"TTFT/ITL of {priors} endpoint(s) are catalogue priors, not measurements")
        return Ranking(
            spec=spec,
            ranked=ranked_per_link[0],
            plan=plan,
            notes=notes,
            prompt_tokens=tokens,
            scorer=scorer_names[0],
        )

    def plan(
        self,
        prompt: Prompt,
        router: str | RouterSpec | None = None,
        *,
        max_tokens: int | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> list[Endpoint]:
        """The endpoints to try, in order, for a fallback chain (see ``rank``)."""
        ranking = self.rank(prompt, router, max_tokens=max_tokens, max_attempts=max_attempts)
        return [self.catalog.endpoint_table[r.endpoint] for r in ranking.plan]

    # -----------------------------------------------------------------------------------------------------

    def _link_endpoints(self, step: RouterStep, link: RouterStep | EndpointStep) -> list[Endpoint]:
        if isinstance(link, EndpointStep) and link.endpoint is not None:
            return [self.catalog.endpoint(link.endpoint)]
        if isinstance(link, EndpointStep):
            return self.catalog.endpoints_for_model(link.model)
        found = self.catalog.endpoints(
            step.models, step.providers, skip_models=step.skip_models, skip_providers=step.skip_providers
        )
        if not found:
            parts = [
                f"{key}:{','.join(value)}"
                for key in ("models", "providers", "skip_models", "skip_providers")
                if (value := getattr(step, key))
            ]
            raise NoCandidatesError(
                f"no endpoint is left after the search space {'|'.join(parts)}: no enabled endpoint serves "
                "those models on those providers; list the endpoints with 'pointsman endpoints' and widen the search",
                param="model",
            )
        return found

    def _rank_link(
        self,
        link: RouterStep | EndpointStep,
        text: str,
        tokens: int,
        max_tokens: int | None,
        notes: list[str],
    ) -> tuple[list[RankedEndpoint], str]:
        if isinstance(link, RouterStep) and link == RouterStep():
            link = self.default_step
        step = as_router_step(link)
        endpoints = self._link_endpoints(step, link)
        scorer = self._scorer_for(step.name)
        known = set(scorer.models)
        if getattr(scorer, "own_models_only", False) and isinstance(link, RouterStep) and step.models is None:
            # A custom router chooses among the models it was trained on (pointsman.custom.registry).
            endpoints = [e for e in endpoints if e.model in known]
            if not endpoints:
                raise NoCandidatesError(
                    f"router {scorer.name!r} routes between {', '.join(sorted(known))}, and no enabled endpoint "
                    "in the search space serves them; widen providers: or check the catalogue",
                    param="model",
                )
        if isinstance(link, EndpointStep):
            # Every endpoint serves the one named model, so quality cannot change the choice: nothing is
            # predicted (no scorer loads; an explicit endpoint never waits for the neural scorer).
            prediction = _unpredicted(link.model, text)
        else:
            scored_models = sorted({e.model for e in endpoints if e.model in known})
            prediction = scorer.predict([text], scored_models) if scored_models else None
        quality = prediction.row(0) if prediction is not None else {}
        borrowed = prediction.fallback if prediction is not None else {}
        candidates: list[Candidate] = []
        figures = self.latency.figures(endpoints)
        priors = CatalogPriors().figures([e for e in endpoints if e.name not in figures])
        unscored: list[str] = []
        for e in endpoints:
            flags: list[str] = []
            if e.model in quality and isinstance(link, EndpointStep):
                q, u = quality[e.model]
                flags.append("quality: prior, not predicted (the request names the model)")
            elif e.model in quality:
                q, u = quality[e.model]
                if e.model in borrowed:
                    flags.append(
                        f"quality: {borrowed[e.model]} (scorer {scorer.name!r} has no latent for it)"
                    )
            else:
                model_prior = self.catalog.model_table[e.model].quality_prior
                if model_prior is not None:
                    q, u = model_prior, None
                    flags.append("quality: catalogue quality_prior")
                elif isinstance(link, EndpointStep) and link.provider is not None:
                    # Named explicitly: route there even though nothing knows its quality.
                    q, u = 0.0, None
                    flags.append("quality: unknown (no prior for it)")
                else:
                    unscored.append(e.model)
                    continue
            figure: LatencyFigure = figures.get(e.name) or priors[e.name]
            if not e.price_verified:
                flags.append("price: unverified")
            candidates.append(
                Candidate(endpoint=e, quality=q, uncertainty=u, latency=figure, flags=tuple(flags))
            )
        if unscored:
            names = ", ".join(sorted(set(unscored)))
            notes.append(
                f"scorer {scorer.name!r} cannot score {names}; dropped (give the model a quality_prior in "
                "your config's [catalog.models] table to route to it)"
            )
        if not candidates:
            raise NoCandidatesError(
                f"no endpoint is left after scoring: scorer {scorer.name!r} knows none of the candidate models "
                f"({', '.join(sorted({e.model for e in endpoints}))}); give them a quality_prior in your config "
                "or use a scorer that knows them",
                param="model",
            )
        ranked = rank(
            candidates,
            step,
            default_weights=self.default_weights,
            prompt_tokens=tokens,
            max_output_tokens=max_tokens,
        )
        return ranked, scorer.name


def _unpredicted(model: str, text: str) -> Prediction | None:
    """The prior's quality for a model a link names (cheap, no torch), or None when the prior lacks it."""
    from pointsman.scorer.prior import PriorScorer

    prior = PriorScorer()
    return prior.predict([text], [model]) if model in prior.models else None
