"""Router strings (Unify-compatible) ⇄ a typed ``RouterSpec``.

A router string is a fallback chain of links joined by ``->``; each link is tried in order::

    router@q:1|c:4.65e-03|t:2.07e-05|i:3.11e-02          weights on quality, cost, TTFT, ITL
    router@custom-1|q:1|c:0.01                            a named router (scorer or custom router) first
    router@lowest-cost|models:mixtral-8x7b-instruct-v0.1,llama-2-70b-chat
    router@q:1|c<5|1<itl<20|q>=0.7                        thresholds (repeatable)
    router@q:1|providers:together,groq|skip_models:yi-34b-chat
    router@q:1|risk:1.5                                   rank by quality − 1.5·uncertainty (Pointsman's own)
    mixtral-8x7b-instruct-v0.1@together                   one endpoint
    mixtral-8x7b-instruct-v0.1@lowest-itl                 one model, the provider chosen by a meta-provider
    mixtral-8x7b-instruct-v0.1                            one model, the best provider by the default weights
    router@q:1|c:0.01->gpt-4-1106-preview@openai          a chain: fall back to GPT-4 if the first fails

Items of a ``router@`` link are separated by ``|``:

* weights ``KEY:NUMBER`` with KEY one of ``q``/``quality``, ``c``/``cost``, ``ic``/``input-cost``,
  ``oc``/``output-cost``, ``t``/``ttft``/``time-to-first-token``, ``i``/``itl``/``inter-token-latency``; NUMBER
  in full float syntax (``4.65e-03`` is 0.00465), at least 0;
* meta-providers ``highest-quality``, ``lowest-cost``, ``lowest-input-cost``, ``lowest-output-cost``,
  ``lowest-ttft``, ``lowest-itl``: shorthand for a single weight, so they cannot be mixed with weights;
* thresholds ``KEY<N``, ``KEY<=N``, ``KEY>N``, ``KEY>=N``, ``N<KEY<N`` (any mix of ``<`` and ``<=``);
* search space ``models:a,b``, ``skip_models:a``, ``providers:p,q``, ``skip_providers:p`` (models ∩ providers);
* ``risk:NUMBER``;
* a router NAME, only as the first item.

Units: quality 0..1; cost in USD per 1M tokens (``c`` is the 3:1 input:output blend); TTFT and ITL in ms.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pointsman.errors import RouterStringError

__all__ = [
    "DEFAULT_ROUTER",
    "META_PROVIDERS",
    "METRICS",
    "EndpointStep",
    "Metric",
    "RouterSpec",
    "RouterStep",
    "Step",
    "Threshold",
    "Weights",
    "parse_router_string",
]

Metric = Literal["quality", "cost", "input_cost", "output_cost", "ttft", "itl"]
METRICS: tuple[str, ...] = ("quality", "cost", "input_cost", "output_cost", "ttft", "itl")
MetaProvider = Literal[
    "highest-quality", "lowest-cost", "lowest-input-cost", "lowest-output-cost", "lowest-ttft", "lowest-itl"
]
META_PROVIDERS: dict[str, Metric] = {
    "highest-quality": "quality",
    "lowest-cost": "cost",
    "lowest-input-cost": "input_cost",
    "lowest-output-cost": "output_cost",
    "lowest-ttft": "ttft",
    "lowest-itl": "itl",
}

_ALIASES: dict[str, Metric] = {
    "q": "quality",
    "quality": "quality",
    "c": "cost",
    "cost": "cost",
    "ic": "input_cost",
    "input-cost": "input_cost",
    "input_cost": "input_cost",
    "oc": "output_cost",
    "output-cost": "output_cost",
    "output_cost": "output_cost",
    "t": "ttft",
    "ttft": "ttft",
    "time-to-first-token": "ttft",
    "i": "itl",
    "itl": "itl",
    "inter-token-latency": "itl",
}
_SHORT: dict[str, str] = {
    "quality": "q",
    "cost": "c",
    "input_cost": "ic",
    "output_cost": "oc",
    "ttft": "t",
    "itl": "i",
}
_SPACE_KEYS = ("models", "skip_models", "providers", "skip_providers")

# The default when a request names no router: quality first, a light touch of cost and latency.
DEFAULT_ROUTER = "router@q:1|c:0.01|t:2e-05|i:0.002"

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_NUMBER_RE = re.compile(rf"^{_NUMBER}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+/\-]*$")
_KEY = r"[A-Za-z][A-Za-z_\-]*"
_ONE_SIDED = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op><=|>=|<|>)\s*(?P<num>\S+)$")
_TWO_SIDED = re.compile(
    rf"^(?P<lo>{_NUMBER})\s*(?P<op1><=|<)\s*(?P<key>{_KEY})\s*(?P<op2><=|<)\s*(?P<hi>\S+)$"
)

_EXPECTED_ITEM = (
    "a weight 'q:1' / 'c:4.65e-03' (keys: q, c, ic, oc, t, i and their long names), a threshold 'c<5' or "
    "'1<itl<20', a search space 'models:a,b' / 'providers:p' / 'skip_models:' / 'skip_providers:', "
    "'risk:1.5', or a meta-provider (" + ", ".join(META_PROVIDERS) + ")"
)
_EXPECTED_LINK = "'router@ITEM|ITEM...', 'model@provider', 'model@meta-provider' or 'model'"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Weights(_Strict):
    """Weights of each term of q·quality − c·cost − ic·input_cost − oc·output_cost − t·TTFT − i·ITL."""

    quality: float = Field(default=0.0, ge=0)
    cost: float = Field(default=0.0, ge=0)
    input_cost: float = Field(default=0.0, ge=0)
    output_cost: float = Field(default=0.0, ge=0)
    ttft: float = Field(default=0.0, ge=0)
    itl: float = Field(default=0.0, ge=0)

    def nonzero(self) -> dict[str, float]:
        return {m: getattr(self, m) for m in METRICS if getattr(self, m) != 0.0}


class Threshold(_Strict):
    """``lower (<|<=) metric (<|<=) upper``; either bound may be absent."""

    metric: Metric
    lower: float | None = None
    lower_inclusive: bool = False
    upper: float | None = None
    upper_inclusive: bool = False

    @model_validator(mode="after")
    def _has_bound(self) -> Threshold:
        if self.lower is None and self.upper is None:
            raise ValueError("a threshold needs a lower or an upper bound")
        return self

    def admits(self, value: float) -> bool:
        if self.lower is not None and (
            value < self.lower or (value == self.lower and not self.lower_inclusive)
        ):
            return False
        return not (
            self.upper is not None
            and (value > self.upper or (value == self.upper and not self.upper_inclusive))
        )

    def to_string(self) -> str:
        key = _SHORT[self.metric]
        if self.lower is not None and self.upper is not None:
            op1 = "<=" if self.lower_inclusive else "<"
            op2 = "<=" if self.upper_inclusive else "<"
            return f"{_num(self.lower)}{op1}{key}{op2}{_num(self.upper)}"
        if self.upper is not None:
            return f"{key}{'<=' if self.upper_inclusive else '<'}{_num(self.upper)}"
        assert self.lower is not None
        return f"{key}{'>=' if self.lower_inclusive else '>'}{_num(self.lower)}"


class RouterStep(_Strict):
    """One ``router@...`` link: rank the search space by the weights, within the thresholds."""

    kind: Literal["router"] = "router"
    name: str | None = Field(
        default=None, description="A scorer or custom router; None = the shipped default."
    )
    weights: Weights | None = Field(default=None, description="None = the default weights (or the meta's).")
    meta: MetaProvider | None = None
    thresholds: tuple[Threshold, ...] = ()
    models: tuple[str, ...] | None = None
    skip_models: tuple[str, ...] = ()
    providers: tuple[str, ...] | None = None
    skip_providers: tuple[str, ...] = ()
    risk: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _meta_xor_weights(self) -> RouterStep:
        if self.meta is not None and self.weights is not None:
            raise ValueError("a meta-provider is shorthand for weights; give one or the other")
        return self

    def effective_weights(self, default: Weights) -> Weights:
        """The weights this step ranks by: its own, its meta-provider's, or ``default``."""
        if self.meta is not None:
            return Weights(**{META_PROVIDERS[self.meta]: 1.0})
        return self.weights if self.weights is not None else default

    def to_string(self) -> str:
        items: list[str] = []
        if self.name is not None:
            items.append(self.name)
        if self.meta is not None:
            items.append(self.meta)
        if self.weights is not None:
            items.extend(f"{_SHORT[m]}:{_num(v)}" for m, v in self.weights.nonzero().items())
            if not self.weights.nonzero():
                items.append("q:0")
        items.extend(t.to_string() for t in self.thresholds)
        for key in _SPACE_KEYS:
            value = getattr(self, key)
            if value is not None and (value or key in ("models", "providers")):
                items.append(f"{key}:{','.join(value)}")
        if self.risk:
            items.append(f"risk:{_num(self.risk)}")
        return "router@" + "|".join(items) if items else "router"


class EndpointStep(_Strict):
    """One ``model@provider`` / ``model@meta`` / ``model`` link."""

    kind: Literal["endpoint"] = "endpoint"
    model: str
    provider: str | None = None
    meta: MetaProvider | None = None

    @model_validator(mode="after")
    def _provider_xor_meta(self) -> EndpointStep:
        if self.provider is not None and self.meta is not None:
            raise ValueError("give a provider or a meta-provider, not both")
        return self

    @property
    def endpoint(self) -> str | None:
        return f"{self.model}@{self.provider}" if self.provider is not None else None

    def to_string(self) -> str:
        if self.provider is not None:
            return f"{self.model}@{self.provider}"
        if self.meta is not None:
            return f"{self.model}@{self.meta}"
        return self.model


Step = Annotated[RouterStep | EndpointStep, Field(discriminator="kind")]


class RouterSpec(_Strict):
    """A parsed router string: the chain of links to try in order (at least one)."""

    chain: tuple[Step, ...] = Field(min_length=1)

    @property
    def primary(self) -> RouterStep | EndpointStep:
        return self.chain[0]

    @property
    def fallbacks(self) -> tuple[RouterStep | EndpointStep, ...]:
        return self.chain[1:]

    def to_string(self) -> str:
        return "->".join(step.to_string() for step in self.chain)

    def __str__(self) -> str:
        return self.to_string()


def _num(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


# ---------------------------------------------------------------------------------------------------------
# Parsing


def parse_router_string(text: str) -> RouterSpec:
    """Parse a router string; a malformed one raises ``RouterStringError`` pointing at the token."""
    if not isinstance(text, str):
        raise RouterStringError("a router string must be a string", text=str(text), position=0)
    if not text.strip():
        raise RouterStringError("empty router string", text=text, position=0, expected=_EXPECTED_LINK)
    steps: list[RouterStep | EndpointStep] = []
    pos = 0
    for part in text.split("->"):
        steps.append(_parse_link(text, part, pos))
        pos += len(part) + 2
    return RouterSpec(chain=tuple(steps))


def _strip(part: str, start: int) -> tuple[str, int]:
    lead = len(part) - len(part.lstrip())
    return part.strip(), start + lead


def _parse_link(text: str, part: str, start: int) -> RouterStep | EndpointStep:
    link, start = _strip(part, start)
    if not link:
        raise RouterStringError(
            "empty link in a fallback chain", text=text, position=start, expected=_EXPECTED_LINK
        )
    head, at, rest = link.partition("@")
    if head == "router":
        if not at:
            return RouterStep()
        return _parse_router_items(text, rest, start + len(head) + 1)
    if "|" in link:
        bar = link.index("|")
        raise RouterStringError(
            "items after '|' belong to a 'router@' link",
            text=text,
            position=start + bar,
            expected="router@ITEM|ITEM... (e.g. 'router@q:1|models:" + head + "')",
        )
    if not _NAME_RE.match(head):
        raise RouterStringError(
            f"{head!r} is not a model name", text=text, position=start, expected=_EXPECTED_LINK
        )
    if not at:
        return EndpointStep(model=head)
    prov_pos = start + len(head) + 1
    if not rest:
        raise RouterStringError(
            "missing provider after '@'", text=text, position=prov_pos, expected="model@provider"
        )
    if rest in META_PROVIDERS:
        return EndpointStep(model=head, meta=rest)  # type: ignore[arg-type]
    if not _NAME_RE.match(rest) or "@" in rest:
        raise RouterStringError(
            f"{rest!r} is not a provider name", text=text, position=prov_pos, expected="model@provider"
        )
    return EndpointStep(model=head, provider=rest)


def _parse_number(text: str, token: str, pos: int, what: str) -> float:
    if not _NUMBER_RE.match(token):
        raise RouterStringError(
            f"{token!r} is not a number", text=text, position=pos, expected=f"{what} (e.g. 1, 0.5, 4.65e-03)"
        )
    return float(token)


def _metric(text: str, key: str, pos: int) -> Metric:
    metric = _ALIASES.get(key.lower())
    if metric is None:
        raise RouterStringError(
            f"unknown metric {key!r}",
            text=text,
            position=pos,
            expected="one of q, c, ic, oc, t, i (quality, cost, input-cost, output-cost, ttft, itl)",
        )
    return metric


def _parse_router_items(text: str, body: str, start: int) -> RouterStep:
    if not body.strip():
        raise RouterStringError(
            "missing items after 'router@'", text=text, position=start, expected=_EXPECTED_ITEM
        )
    name: str | None = None
    meta: str | None = None
    weights: dict[str, float] = {}
    weight_pos: int | None = None
    meta_pos: int | None = None
    thresholds: list[Threshold] = []
    space: dict[str, tuple[str, ...]] = {}
    risk: float | None = None
    pos = start
    for index, raw in enumerate(body.split("|")):
        item, item_pos = _strip(raw, pos)
        pos += len(raw) + 1
        if not item:
            raise RouterStringError("empty item", text=text, position=item_pos, expected=_EXPECTED_ITEM)
        if item in META_PROVIDERS:
            if meta is not None:
                raise RouterStringError("a second meta-provider", text=text, position=item_pos)
            if weights:
                raise RouterStringError(
                    f"meta-provider {item!r} is shorthand for weights and cannot be mixed with them",
                    text=text,
                    position=item_pos,
                    expected="either weights (q:1|c:0.01) or one meta-provider",
                )
            meta, meta_pos = item, item_pos
            continue
        two = _TWO_SIDED.match(item)
        one = _ONE_SIDED.match(item) if two is None else None
        if two is not None:
            key_pos = item_pos + two.start("key")
            metric = _metric(text, two["key"], key_pos)
            lo = _parse_number(text, two["lo"], item_pos, "a lower bound")
            hi = _parse_number(text, two["hi"], item_pos + two.start("hi"), "an upper bound")
            if lo > hi:
                raise RouterStringError(
                    f"empty range: {two['lo']} is above {two['hi']}",
                    text=text,
                    position=item_pos,
                    expected="LOW<KEY<HIGH with LOW <= HIGH",
                )
            thresholds.append(
                Threshold(
                    metric=metric,
                    lower=lo,
                    lower_inclusive=two["op1"] == "<=",
                    upper=hi,
                    upper_inclusive=two["op2"] == "<=",
                )
            )
            continue
        if one is not None:
            metric = _metric(text, one["key"], item_pos)
            value = _parse_number(text, one["num"], item_pos + one.start("num"), "a bound")
            op = one["op"]
            if op.startswith("<"):
                thresholds.append(Threshold(metric=metric, upper=value, upper_inclusive=op == "<="))
            else:
                thresholds.append(Threshold(metric=metric, lower=value, lower_inclusive=op == ">="))
            continue
        if any(ch in item for ch in "<>=") and ":" not in item:
            raise RouterStringError(
                f"malformed threshold {item!r}",
                text=text,
                position=item_pos,
                expected="KEY<N, KEY<=N, KEY>N, KEY>=N or N<KEY<N (e.g. c<5, 1<itl<20, q>=0.7)",
            )
        key, colon, value_text = item.partition(":")
        key = key.strip()
        value_pos = item_pos + len(key) + 1
        value_text = value_text.strip()
        if colon:
            lowered = key.lower()
            if lowered in _SPACE_KEYS:
                if lowered in space:
                    raise RouterStringError(f"{lowered!r} given twice", text=text, position=item_pos)
                names = tuple(n.strip() for n in value_text.split(",")) if value_text else ()
                for n in names:
                    if not _NAME_RE.match(n):
                        raise RouterStringError(
                            f"{n!r} is not a {'model' if 'model' in lowered else 'provider'} name",
                            text=text,
                            position=value_pos + value_text.find(n) if n else value_pos,
                            expected=f"{lowered}:NAME,NAME (comma-separated, no empty names)",
                        )
                if lowered in ("models", "providers") and not names:
                    raise RouterStringError(
                        f"{lowered!r} needs at least one name",
                        text=text,
                        position=value_pos,
                        expected=f"{lowered}:NAME,NAME",
                    )
                space[lowered] = names
                continue
            if lowered == "risk":
                if risk is not None:
                    raise RouterStringError("'risk' given twice", text=text, position=item_pos)
                risk = _parse_number(text, value_text, value_pos, "a risk aversion >= 0")
                if risk < 0:
                    raise RouterStringError(
                        "risk aversion cannot be negative",
                        text=text,
                        position=value_pos,
                        expected="risk:N with N >= 0",
                    )
                continue
            weight_metric = _ALIASES.get(lowered)
            if weight_metric is None:
                raise RouterStringError(
                    f"unknown key {key!r}", text=text, position=item_pos, expected=_EXPECTED_ITEM
                )
            if meta is not None:
                raise RouterStringError(
                    f"weight {key!r} cannot be mixed with meta-provider {meta!r}",
                    text=text,
                    position=item_pos,
                    expected="either weights (q:1|c:0.01) or one meta-provider",
                )
            if weight_metric in weights:
                raise RouterStringError(f"weight {weight_metric!r} given twice", text=text, position=item_pos)
            number = _parse_number(text, value_text, value_pos, "a weight")
            if number < 0:
                raise RouterStringError(
                    "weights cannot be negative (each term is already subtracted for cost and latency)",
                    text=text,
                    position=value_pos,
                    expected="KEY:N with N >= 0",
                )
            weights[weight_metric] = number
            weight_pos = weight_pos if weight_pos is not None else item_pos
            continue
        if index == 0 and _NAME_RE.match(item):
            name = item
            continue
        raise RouterStringError(
            f"unexpected item {item!r}", text=text, position=item_pos, expected=_EXPECTED_ITEM
        )
    del meta_pos, weight_pos
    return RouterStep(
        name=name,
        weights=Weights(**weights) if weights else None,
        meta=meta,  # type: ignore[arg-type]
        thresholds=tuple(thresholds),
        models=space.get("models"),
        skip_models=space.get("skip_models", ()),
        providers=space.get("providers"),
        skip_providers=space.get("skip_providers", ()),
        risk=risk or 0.0,
    )
