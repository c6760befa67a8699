"""The user's TOML config file: catalogue overrides and additions, and routing defaults.

    [routing]
    default_router = "router@q:1|c:0.01"        # used when a request names no router

    [catalog.providers.fake]                     # a new provider: a local OpenAI-compatible server
    base_url = "http://127.0.0.1:8765/v1"
    ttft_prior_ms = 50
    itl_prior_ms = 5

    [catalog.endpoints."mixtral-8x7b-instruct-v0.1@fake"]
    upstream_model = "mixtral"
    input_usd_per_mtok = 0.1
    output_usd_per_mtok = 0.1
    price_as_of = 2026-01-01

    [catalog.endpoints."gpt-4-1106-preview@openai"]
    input_usd_per_mtok = 9.5                     # change one field of a shipped entry

    [catalog.providers.ollama]
    enabled = true                               # turn on a shipped, disabled provider

The ``[catalog]`` tables have the shape of the shipped ``pointsman/data/catalog.toml`` and are merged into it
field by field. Other top-level tables belong to other parts of Pointsman (the gateway, the ledger); each
reads its own with ``Config.section(name, Model)``, which validates it and names the file and line of any error.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from pointsman.errors import ConfigError

__all__ = ["Config", "RoutingSection", "find_toml_line", "load_config"]

M = TypeVar("M", bound=BaseModel)


class RoutingSection(BaseModel):
    """``[routing]``: defaults for ranking."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_router: str | None = None
    scorer: str | None = None


_OWN_SECTIONS = ("catalog", "routing")
_CATALOG_TABLES = ("models", "providers", "endpoints")


@dataclass(frozen=True)
class Config:
    """A parsed config file. ``raw`` is the decoded TOML; ``text`` the file's text (for line numbers)."""

    path: Path | None
    raw: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    def catalog_overrides(self) -> dict[str, Any]:
        """The ``[catalog]`` table, checked for its three known sub-tables."""
        catalog = self.raw.get("catalog", {})
        if not isinstance(catalog, dict):
            raise self._error("'catalog' must be a table ([catalog.providers.NAME] ...)", ("catalog",))
        for key, value in catalog.items():
            if key not in _CATALOG_TABLES:
                raise self._error(
                    f"unknown table 'catalog.{key}'; expected one of {', '.join(_CATALOG_TABLES)}",
                    ("catalog", key),
                )
            if not isinstance(value, dict):
                raise self._error(f"'catalog.{key}' must be a table of tables", ("catalog", key))
            for name, entry in value.items():
                if not isinstance(entry, dict):
                    raise self._error(
                        f"'catalog.{key}.{name}' must be a table of fields", ("catalog", key, name)
                    )
        return catalog

    @property
    def routing(self) -> RoutingSection:
        return self.section("routing", RoutingSection)

    def section(self, name: str, model: type[M]) -> M:
        """Validate the top-level table ``[name]`` (missing = all defaults) with ``model``."""
        value = self.raw.get(name, {})
        if not isinstance(value, dict):
            raise self._error(f"'{name}' must be a table", (name,))
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = (name, *(str(p) for p in err["loc"]))
            message = err["msg"]
            if err["type"] == "extra_forbidden":
                message = f"unknown field {loc[-1]!r} (check its spelling)"
            raise self._error(message, loc) from exc

    def _error(self, message: str, loc: Sequence[str]) -> ConfigError:
        where = str(self.path) if self.path is not None else "<config>"
        line = find_toml_line(self.text, tuple(loc))
        if line is not None:
            where += f", line {line}"
        return ConfigError(f"{where}: {'.'.join(loc)}: {message}")


def load_config(path: Path | None) -> Config:
    """Read a config file; ``None`` gives the empty config. Bad TOML → ``ConfigError`` with file and line."""
    if path is None:
        return Config(path=None)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file; check the path given to --config") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from exc
    try:
        raw = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return Config(path=Path(path), raw=raw, text=text)


# ---------------------------------------------------------------------------------------------------------
# Finding the line of a key in TOML text (tomllib reports lines only for syntax errors).

_BARE_KEY = re.compile(r"[A-Za-z0-9_\-]+")


def _split_key(text: str) -> list[str] | None:
    """Split a TOML dotted key (``a."b.c".d``) into parts; None if it is not a key."""
    parts: list[str] = []
    i = 0
    text = text.strip()
    while i < len(text):
        while i < len(text) and text[i] in " \t":
            i += 1
        if i >= len(text):
            break
        ch = text[i]
        if ch in "\"'":
            end = text.find(ch, i + 1)
            if end < 0:
                return None
            parts.append(text[i + 1 : end])
            i = end + 1
        else:
            m = _BARE_KEY.match(text, i)
            if not m:
                return None
            parts.append(m.group(0))
            i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text):
            if text[i] != ".":
                return None
            i += 1
    return parts or None


def find_toml_line(text: str, loc: tuple[str, ...], *, min_depth: int = 1) -> int | None:
    """The 1-based line that defines ``loc`` (a path of keys) in TOML ``text``, or its nearest defined
    ancestor at least ``min_depth`` keys deep; None when there is none."""
    if not text or not loc:
        return None
    best_line: int | None = None
    best_depth = 0
    table: list[str] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            inner = line.lstrip("[").split("]", 1)[0]
            parts = _split_key(inner)
            if parts is None:
                continue
            table = parts
            depth = _common_prefix(table, loc)
            # A header names loc's table itself, an ancestor of it, or (implicitly) defines loc by nesting.
            if (depth == len(table) or depth == len(loc)) and depth > best_depth:
                best_line, best_depth = number, depth
            continue
        if "=" not in line:
            continue
        key_parts = _split_key(line.split("=", 1)[0])
        if key_parts is None:
            continue
        full = [*table, *key_parts]
        depth = _common_prefix(full, loc)
        if _common_prefix(table, loc) == len(table) and depth > len(table) and depth > best_depth:
            best_line, best_depth = number, depth
    return best_line if best_depth >= min_depth else None


def _common_prefix(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
