"""Every error Pointsman raises on purpose, in one tree.

Each class carries the HTTP status and the OpenAI-style error ``type``/``code`` the gateway answers with, so one
handler can turn any of them into ``{"error": {"message", "type", "param", "code"}}``. Library and upstream
exceptions are mapped at the boundary (``raise UpstreamError(...) from exc``); nothing below is raised for a bug.

    PointsmanError                    500  the root; never raised directly
    ├── ConfigError                   500  a bad config or catalogue file (names the file and line)
    ├── DataError                     400  a routing-data file that breaks the schema (names file, line, field)
    ├── RouterStringError             400  a malformed router string (points at the offending token)
    ├── UnknownNameError              404  an unknown model, provider, endpoint, router or scorer (lists close matches)
    ├── NoCandidatesError             400  the filters left no endpoint (names the filter that emptied the set)
    ├── InvalidRequestError           400  a request the gateway cannot accept as sent
    │   └── RequestTooLargeError      413  a body over the configured cap
    ├── AuthenticationError           401  a missing, unknown or revoked API key
    ├── PermissionDeniedError         403  a valid key asking for something it may not do
    ├── InsufficientCreditError       402  the balance cannot cover the request's maximum cost
    ├── RateLimitError                429  a per-key request-per-minute or budget limit
    ├── ClientDisconnectedError       499  the client hung up before the answer began (nobody reads the reply)
    ├── MissingKeyError               500  a provider's API key is not set (names the environment variable)
    ├── ScorerError                   500  a checkpoint that cannot be loaded or does not fit its config
    └── UpstreamError                 502  a provider failed; ``retryable`` says whether a fallback may follow
        ├── UpstreamConnectionError   502  could not connect, or the connection broke
        ├── UpstreamTimeoutError      504  connect, first-token or total timeout
        ├── UpstreamStatusError       502  the provider answered with an error status (kept in ``upstream_status``)
        └── UpstreamProtocolError     502  the provider answered with something that is not its API
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AuthenticationError",
    "ClientDisconnectedError",
    "ConfigError",
    "DataError",
    "InsufficientCreditError",
    "InvalidRequestError",
    "MissingKeyError",
    "NoCandidatesError",
    "PermissionDeniedError",
    "PointsmanError",
    "RateLimitError",
    "RequestTooLargeError",
    "RouterStringError",
    "ScorerError",
    "UnknownNameError",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamStatusError",
    "UpstreamTimeoutError",
    "close_matches",
]


class PointsmanError(Exception):
    """The root of every error Pointsman raises on purpose."""

    status_code: int = 500
    error_type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param

    def to_openai(self) -> dict[str, object]:
        """The body OpenAI's API answers errors with."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class ConfigError(PointsmanError):
    code = "config_error"


class DataError(PointsmanError):
    """A data file that breaks its schema. The message names the file, the line and the field."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_data"

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, field: str | None = None
    ) -> None:
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            if field is not None:
                where += f", field {field!r}"
            where += ": "
        super().__init__(where + message, param=field)
        self.path = path
        self.line = line
        self.field = field


class RouterStringError(PointsmanError):
    """A malformed router string; ``position`` is the 0-based index of the offending token."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_router_string"

    def __init__(self, message: str, *, text: str, position: int, expected: str | None = None) -> None:
        caret = " " * position + "^"
        full = f"{message}\n  {text}\n  {caret}"
        if expected:
            full += f"\nexpected: {expected}"
        super().__init__(full, param="model")
        self.text = text
        self.position = position
        self.expected = expected


class UnknownNameError(PointsmanError):
    """An unknown model, provider, endpoint, router or scorer; the message lists the close matches."""

    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"

    def __init__(self, kind: str, name: str, known: Iterable[str], *, param: str | None = None) -> None:
        known = sorted(set(known))
        matches = close_matches(name, known)
        message = f"unknown {kind} {name!r}"
        if matches:
            message += f"; did you mean {', '.join(repr(m) for m in matches)}?"
        elif known:
            shown = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
            message += f"; known: {shown}"
        super().__init__(message, param=param)
        self.kind = kind
        self.name = name
        self.matches = matches


class NoCandidatesError(PointsmanError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "no_candidates"


class InvalidRequestError(PointsmanError):
    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"


class RequestTooLargeError(InvalidRequestError):
    status_code = 413
    code = "request_too_large"


class AuthenticationError(PointsmanError):
    status_code = 401
    error_type = "authentication_error"
    code = "invalid_api_key"


class PermissionDeniedError(PointsmanError):
    status_code = 403
    error_type = "permission_error"
    code = "permission_denied"


class InsufficientCreditError(PointsmanError):
    status_code = 402
    error_type = "insufficient_quota"
    code = "insufficient_quota"


class RateLimitError(PointsmanError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"


class ClientDisconnectedError(PointsmanError):
    status_code = 499  # nginx's "client closed request"; answered to nobody, counted in the metrics
    error_type = "client_closed_request"
    code = "client_disconnected"


class MissingKeyError(PointsmanError):
    code = "missing_provider_key"


class ScorerError(PointsmanError):
    code = "scorer_error"


class UpstreamError(PointsmanError):
    """A provider failed. ``retryable`` tells the gateway whether falling back or retrying may help."""

    status_code = 502
    error_type = "upstream_error"
    code = "upstream_error"
    retryable: bool = True

    def __init__(self, message: str, *, endpoint: str | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        if retryable is not None:
            self.retryable = retryable


class UpstreamConnectionError(UpstreamError):
    code = "upstream_connection_error"


class UpstreamTimeoutError(UpstreamError):
    status_code = 504
    code = "upstream_timeout"


class UpstreamStatusError(UpstreamError):
    code = "upstream_status_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        endpoint: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        retryable = upstream_status in (408, 409, 429) or upstream_status >= 500
        super().__init__(message, endpoint=endpoint, retryable=retryable)
        self.upstream_status = upstream_status
        self.retry_after_s = retry_after_s


class UpstreamProtocolError(UpstreamError):
    code = "upstream_protocol_error"


def close_matches(name: str, known: Iterable[str], n: int = 5) -> list[str]:
    """The known names closest to ``name``: difflib's ratio, plus any that contain it or that it contains."""
    known = list(known)
    lowered = name.lower()
    found = difflib.get_close_matches(lowered, known, n=n, cutoff=0.6)
    for candidate in known:
        if len(found) >= n:
            break
        if candidate not in found and lowered and (lowered in candidate or candidate in lowered):
            found.append(candidate)
    return found
