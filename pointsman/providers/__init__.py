"""Provider adapters (one module per API style), the SSE decoder and the fake provider server."""

from pointsman.providers.base import Provider, Timeouts, Upstream
from pointsman.providers.registry import API_STYLES, build_providers, provider_class

__all__ = ["API_STYLES", "Provider", "Timeouts", "Upstream", "build_providers", "provider_class"]
