"""The catalogue: models, providers and the endpoints ``model@provider`` that serve them.

An endpoint is one model served by one provider: its price (USD per 1M input and output tokens, as ``Decimal``
so the ledger charges exactly, with the date the price was read and whether it was checked against the
provider's own page), the context window, the API style (``openai`` or ``anthropic``), the base URL, the
environment variable holding the key, and rough latency priors (used until live benchmarks exist).

The shipped catalogue is ``pointsman/data/catalog.toml``. A user's config file (``pointsman.config``) may
change any field of any entry or add models, providers and endpoints; ``load_catalog`` merges the two and
validates the result, naming the file and line of anything wrong.

Providers can be disabled (the local, keyless ones ship disabled: ``ollama``, ``vllm``, ``llamacpp``); a
disabled provider's endpoints are not candidates, and naming one raises ``NoCandidatesError`` (400) saying
how to enable it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pointsman.errors import ConfigError, NoCandidatesError, UnknownNameError

if TYPE_CHECKING:
    from pointsman.config import Config

__all__ = [
    "SHIPPED_CATALOG",
    "ApiStyle",
    "Catalog",
    "Endpoint",
    "Model",
    "Provider",
    "endpoint_name",
    "load_catalog",
    "parse_catalog_dict",
    "split_endpoint_name",
]

ApiStyle = Literal["openai", "anthropic"]

SHIPPED_CATALOG = Path(__file__).resolve().parent / "data" / "catalog.toml"

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+/\-]*$"


def endpoint_name(model: str, provider: str) -> str:
    """``model@provider``."""
    return f"{model}@{provider}"


def split_endpoint_name(name: str) -> tuple[str, str]:
    """``"model@provider"`` → ``("model", "provider")``; anything else is an ``UnknownNameError``."""
    model, sep, provider = name.rpartition("@")
    if not sep or not model or not provider:
        raise UnknownNameError("endpoint", name, [], param="model")
    return model, provider


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Model(_Frozen):
    """A model, independent of who serves it."""

    name: str = Field(pattern=_NAME_PATTERN)
    context_window: int = Field(gt=0, description="Tokens of prompt plus answer the model accepts.")
    max_output_tokens: int | None = Field(default=None, gt=0)
    description: str = ""
    quality_prior: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Quality (0..1, default label scale) to assume when the scorer does not know this model.",
    )


class Provider(_Frozen):
    """Someone who serves models behind one API."""

    name: str = Field(pattern=_NAME_PATTERN)
    base_url: str
    api_style: ApiStyle = "openai"
    api_key_env: str | None = Field(
        default=None, description="Environment variable holding the key; None for keyless local servers."
    )
    ttft_prior_ms: float = Field(gt=0, description="Rough time to first token, until benchmarks exist.")
    itl_prior_ms: float = Field(gt=0, description="Rough inter-token latency, until benchmarks exist.")
    enabled: bool = True
    homepage: str = ""
    description: str = ""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value or None


class Endpoint(_Frozen):
    """One model served by one provider, with everything needed to rank it and call it."""

    name: str
    model: str
    provider: str
    upstream_model: str = Field(description="The provider's own id for the model.")
    input_usd_per_mtok: Decimal = Field(ge=0)
    output_usd_per_mtok: Decimal = Field(ge=0)
    price_as_of: date
    price_verified: bool
    price_source: str = ""
    context_window: int = Field(gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    api_style: ApiStyle
    base_url: str
    api_key_env: str | None
    ttft_prior_ms: float = Field(gt=0)
    itl_prior_ms: float = Field(gt=0)

    @model_validator(mode="after")
    def _name_matches(self) -> Endpoint:
        if self.name != endpoint_name(self.model, self.provider):
            raise ValueError(f"name must be {endpoint_name(self.model, self.provider)!r}, got {self.name!r}")
        return self

    def blended_usd_per_mtok(
        self, input_share: Decimal = Decimal(3), output_share: Decimal = Decimal(1)
    ) -> Decimal:
        """Price of 1M tokens mixed ``input_share:output_share`` (3:1 by default, as Unify and Artificial
        Analysis blend)."""
        total = input_share + output_share
        return (self.input_usd_per_mtok * input_share + self.output_usd_per_mtok * output_share) / total

    def cost_usd(self, input_tokens: int, output_tokens: int) -> Decimal:
        """Exact list-price cost of one call."""
        million = Decimal(1_000_000)
        return (self.input_usd_per_mtok * input_tokens + self.output_usd_per_mtok * output_tokens) / million


class _EndpointEntry(_Frozen):
    """An endpoint as written in a catalogue file; unset fields come from its model and provider."""

    upstream_model: str
    input_usd_per_mtok: Decimal = Field(ge=0)
    output_usd_per_mtok: Decimal = Field(ge=0)
    price_as_of: date
    price_verified: bool = False
    price_source: str = ""
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    base_url: str | None = None
    ttft_prior_ms: float | None = Field(default=None, gt=0)
    itl_prior_ms: float | None = Field(default=None, gt=0)


class _ModelEntry(_Frozen):
    context_window: int = Field(gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    description: str = ""
    quality_prior: float | None = Field(default=None, ge=0.0, le=1.0)


class _ProviderEntry(_Frozen):
    base_url: str
    api_style: ApiStyle = "openai"
    api_key_env: str | None = None
    ttft_prior_ms: float = Field(gt=0)
    itl_prior_ms: float = Field(gt=0)
    enabled: bool = True
    homepage: str = ""
    description: str = ""


class _CatalogFile(_Frozen):
    """The whole catalogue file: ``[models.NAME]``, ``[providers.NAME]``, ``[endpoints."model@provider"]``."""

    models: dict[str, _ModelEntry] = Field(default_factory=dict)
    providers: dict[str, _ProviderEntry] = Field(default_factory=dict)
    endpoints: dict[str, _EndpointEntry] = Field(default_factory=dict)


@dataclass(frozen=True)
class Catalog:
    """Every model, provider and endpoint known, after merging the user's overrides.

    ``endpoints()`` lists only endpoints of enabled providers; ``endpoint(name)`` explains how to enable a
    disabled one.
    """

    model_table: Mapping[str, Model]
    provider_table: Mapping[str, Provider]
    endpoint_table: Mapping[str, Endpoint]
    sources: tuple[str, ...] = field(default=())

    @property
    def models(self) -> list[str]:
        """Names of models with at least one endpoint on an enabled provider, sorted."""
        return sorted({e.model for e in self._enabled()})

    @property
    def providers(self) -> list[str]:
        """Names of enabled providers, sorted."""
        return sorted(p.name for p in self.provider_table.values() if p.enabled)

    def _enabled(self) -> Iterable[Endpoint]:
        return (e for e in self.endpoint_table.values() if self.provider_table[e.provider].enabled)

    def model(self, name: str) -> Model:
        if name not in self.model_table:
            raise UnknownNameError("model", name, self.models, param="model")
        return self.model_table[name]

    def provider(self, name: str) -> Provider:
        if name not in self.provider_table:
            raise UnknownNameError("provider", name, self.providers, param="model")
        return self.provider_table[name]

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint ``model@provider``; unknown names list close matches."""
        found = self.endpoint_table.get(name)
        if found is None:
            model, _, provider = name.rpartition("@")
            if model and provider and model in self.model_table and provider in self.provider_table:
                served = [e.name for e in self._enabled() if e.model == model]
                raise UnknownNameError("endpoint", name, served or self.endpoint_table, param="model")
            raise UnknownNameError("endpoint", name, [e.name for e in self._enabled()], param="model")
        self._check_enabled(found)
        return found

    def _check_enabled(self, endpoint: Endpoint) -> None:
        provider = self.provider_table[endpoint.provider]
        if not provider.enabled:
            raise NoCandidatesError(
                f"endpoint {endpoint.name!r} is on provider {provider.name!r}, which is disabled; enable it "
                f"by adding to your config file:\n  [catalog.providers.{provider.name}]\n  enabled = true",
                param="model",
            )

    def endpoints_for_model(self, model: str) -> list[Endpoint]:
        """Enabled endpoints serving ``model``, sorted by name."""
        if model not in self.model_table:
            raise UnknownNameError("model", model, self.models, param="model")
        found = sorted((e for e in self._enabled() if e.model == model), key=lambda e: e.name)
        if not found:
            disabled = sorted(e.provider for e in self.endpoint_table.values() if e.model == model)
            if not disabled:
                raise UnknownNameError("endpoint for model", model, self.models, param="model")
            enable = "\n".join(f"  [catalog.providers.{p}]\n  enabled = true" for p in disabled)
            raise NoCandidatesError(
                f"model {model!r} is only served by disabled providers ({', '.join(disabled)}); enable one "
                f"by adding to your config file:\n{enable}",
                param="model",
            )
        return found

    def endpoints(
        self,
        models: Sequence[str] | None = None,
        providers: Sequence[str] | None = None,
        *,
        skip_models: Sequence[str] = (),
        skip_providers: Sequence[str] = (),
    ) -> list[Endpoint]:
        """Enabled endpoints in ``models`` ∩ ``providers`` minus the skipped ones, sorted by name.

        Every name given is checked: an unknown model or provider raises ``UnknownNameError`` with close
        matches (a typo must not silently shrink the search space)."""
        for name in [*(models or ()), *skip_models]:
            if name not in self.model_table:
                raise UnknownNameError("model", name, self.models, param="model")
        for name in [*(providers or ()), *skip_providers]:
            if name not in self.provider_table:
                raise UnknownNameError("provider", name, self.providers, param="model")
        model_set = set(models) if models is not None else None
        provider_set = set(providers) if providers is not None else None
        out = [
            e
            for e in self._enabled()
            if (model_set is None or e.model in model_set)
            and (provider_set is None or e.provider in provider_set)
            and e.model not in skip_models
            and e.provider not in skip_providers
        ]
        return sorted(out, key=lambda e: e.name)


# ---------------------------------------------------------------------------------------------------------
# Loading


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: no such file; check the path (or drop --config to use the defaults)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file ({exc})") from exc
    try:
        return tomllib.loads(text, parse_float=Decimal), text
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)".
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _schema_error(exc: ValidationError, where: Sequence[tuple[str, str, tuple[str, ...]]]) -> ConfigError:
    """Turn the first pydantic error into a ``ConfigError`` naming file and line.

    ``where`` lists (path, text, prefix) in priority order: the first file whose text holds the offending
    table wins; ``prefix`` is the path of the catalogue inside that file (``("catalog",)`` in a user config).
    """
    from pointsman.config import find_toml_line

    err = exc.errors()[0]
    loc = tuple(str(p) for p in err["loc"])
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = f"unknown field {loc[-1]!r} (check its spelling)"
    field_path = ".".join(loc)
    for path, text, prefix in where:
        line = find_toml_line(text, (*prefix, *loc), min_depth=len(prefix) + min(2, len(loc)))
        if line is not None:
            return ConfigError(f"{path}, line {line}: {'.'.join((*prefix, *loc))}: {message}")
    path, _, prefix = where[0]
    return ConfigError(f"{path}: {'.'.join((*prefix, field_path))}: {message}")


def parse_catalog_dict(
    raw: Mapping[str, Any],
    *,
    where: Sequence[tuple[str, str, tuple[str, ...]]] = (("<catalogue>", "", ()),),
) -> Catalog:
    """Validate a merged catalogue mapping into a ``Catalog``. ``where`` says which files to blame."""
    try:
        parsed = _CatalogFile.model_validate(raw)
    except ValidationError as exc:
        raise _schema_error(exc, where) from exc

    def blame(message: str, loc: tuple[str, ...]) -> ConfigError:
        from pointsman.config import find_toml_line

        for path, text, prefix in where:
            line = find_toml_line(text, (*prefix, *loc), min_depth=len(prefix) + min(2, len(loc)))
            if line is not None:
                return ConfigError(f"{path}, line {line}: {'.'.join((*prefix, *loc))}: {message}")
        return ConfigError(f"{where[0][0]}: {'.'.join(loc)}: {message}")

    def entry_error(exc: ValidationError, section: str, name: str) -> ConfigError:
        err = exc.errors()[0]
        return blame(err["msg"], (section, name, *(str(p) for p in err["loc"])))

    models: dict[str, Model] = {}
    for name, model_entry in parsed.models.items():
        try:
            models[name] = Model(name=name, **model_entry.model_dump())
        except ValidationError as exc:
            raise entry_error(exc, "models", name) from exc
    providers: dict[str, Provider] = {}
    for name, provider_entry in parsed.providers.items():
        try:
            providers[name] = Provider(name=name, **provider_entry.model_dump())
        except ValidationError as exc:
            raise entry_error(exc, "providers", name) from exc

    endpoints: dict[str, Endpoint] = {}
    for name, entry in parsed.endpoints.items():
        loc = ("endpoints", name)
        model_name, sep, provider_name = name.rpartition("@")
        if not sep or not model_name or not provider_name:
            raise blame("an endpoint's name must be 'model@provider'", loc)
        if provider_name not in providers:
            known = ", ".join(sorted(providers))
            raise blame(
                f"unknown provider {provider_name!r}; add a [providers.{provider_name}] table (known: {known})",
                loc,
            )
        provider = providers[provider_name]
        model = models.get(model_name)
        if model is None:
            if entry.context_window is None:
                raise blame(
                    f'unknown model {model_name!r}; add a [models."{model_name}"] table with its '
                    "context_window, or give this endpoint a context_window",
                    loc,
                )
            model = Model(name=model_name, context_window=entry.context_window)
            models[model_name] = model
        try:
            endpoints[name] = Endpoint(
                name=name,
                model=model_name,
                provider=provider_name,
                upstream_model=entry.upstream_model,
                input_usd_per_mtok=entry.input_usd_per_mtok,
                output_usd_per_mtok=entry.output_usd_per_mtok,
                price_as_of=entry.price_as_of,
                price_verified=entry.price_verified,
                price_source=entry.price_source,
                context_window=entry.context_window or model.context_window,
                max_output_tokens=entry.max_output_tokens or model.max_output_tokens,
                api_style=provider.api_style,
                base_url=(entry.base_url or provider.base_url).rstrip("/"),
                api_key_env=provider.api_key_env,
                ttft_prior_ms=entry.ttft_prior_ms or provider.ttft_prior_ms,
                itl_prior_ms=entry.itl_prior_ms or provider.itl_prior_ms,
            )
        except ValidationError as exc:
            raise blame(exc.errors()[0]["msg"], loc) from exc
    return Catalog(
        model_table=models,
        provider_table=providers,
        endpoint_table=endpoints,
        sources=tuple(path for path, _, _ in where),
    )


def load_catalog(
    config_file: Path | None = None, *, config: Config | None = None, shipped: Path = SHIPPED_CATALOG
) -> Catalog:
    """The shipped catalogue merged with the ``[catalog]`` section of the user's config: ``config`` when
    already parsed, else ``config_file`` (if given). Bad files raise ``ConfigError`` naming the file and line."""
    from pointsman.config import load_config

    raw, text = _read_toml(shipped)
    where: list[tuple[str, str, tuple[str, ...]]] = [(str(shipped), text, ())]
    if config is None and config_file is not None:
        config = load_config(config_file)
    if config is not None and config.raw:
        raw = _deep_merge(raw, config.catalog_overrides())
        # Blame the user's file first for anything it touched.
        where.insert(0, (str(config.path) if config.path else "<config>", config.text, ("catalog",)))
    return parse_catalog_dict(raw, where=where)
