"""The one registry of provider API styles: the catalogue's ``api_style`` names a key here."""

from __future__ import annotations

import httpx

from pointsman.errors import UnknownNameError
from pointsman.providers.anthropic import AnthropicProvider
from pointsman.providers.base import Provider
from pointsman.providers.openai import OpenAIProvider

__all__ = ["API_STYLES", "build_providers", "provider_class"]

API_STYLES: dict[str, type[Provider]] = {
    OpenAIProvider.api_style: OpenAIProvider,
    AnthropicProvider.api_style: AnthropicProvider,
}


def provider_class(api_style: str) -> type[Provider]:
    try:
        return API_STYLES[api_style]
    except KeyError:
        raise UnknownNameError("API style", api_style, API_STYLES, param="api_style") from None


def build_providers(client: httpx.AsyncClient) -> dict[str, Provider]:
    """One adapter per API style, all sharing ``client``'s connection pool."""
    return {name: cls(client) for name, cls in API_STYLES.items()}
