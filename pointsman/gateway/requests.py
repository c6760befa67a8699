"""Reading and checking a chat request: the body cap (413), JSON (400), the schema (400), max_tokens.

Only what the gateway relies on is validated; other OpenAI parameters pass through to the provider untouched.
The ``pointsman`` object is the gateway's own extension (``{"explain": true}``) and is never sent upstream.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pointsman.errors import InvalidRequestError, RequestTooLargeError
from pointsman.gateway.settings import GatewaySettings

__all__ = ["ChatRequest", "PointsmanOptions", "parse_chat_request", "read_body"]


class PointsmanOptions(BaseModel):
    """The ``pointsman`` extension object of a request."""

    model_config = ConfigDict(extra="forbid")

    explain: bool = False


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stream_options: dict[str, Any] | None = None
    pointsman: PointsmanOptions | None = None


async def read_body(request: Request, cap: int) -> bytes:
    """The request body, refusing (413) anything over ``cap`` bytes without reading all of it."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise _too_large(int(declared), cap)
    parts: list[bytes] = []
    size = 0
    async for part in request.stream():
        size += len(part)
        if size > cap:
            raise _too_large(size, cap)
        parts.append(part)
    return b"".join(parts)


def _too_large(size: int, cap: int) -> RequestTooLargeError:
    return RequestTooLargeError(
        f"the request body is {size} bytes, over this gateway's limit of {cap} bytes; send a shorter "
        "conversation, or raise [gateway] max_body_bytes",
        param=None,
    )


def parse_chat_request(raw: bytes, settings: GatewaySettings) -> tuple[dict[str, Any], ChatRequest]:
    """The body as a dict (to forward) and as a checked ``ChatRequest``."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequestError(
            f"the request body is not valid JSON ({exc}); send a JSON object with 'model' and 'messages'"
        ) from exc
    if not isinstance(body, dict):
        raise InvalidRequestError("the request body must be a JSON object with 'model' and 'messages'")
    try:
        req = ChatRequest.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise InvalidRequestError(f"invalid request: {where}: {err['msg']}", param=where or None) from exc
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(req, name)
        if value is None:
            continue
        if value < 1:
            raise InvalidRequestError(f"{name} must be at least 1, got {value}", param=name)
        if value > settings.max_tokens_cap:
            raise InvalidRequestError(
                f"{name}={value} is above this gateway's limit of {settings.max_tokens_cap}; ask for fewer "
                "tokens (no model answers that long), or raise [gateway] max_tokens_cap",
                param=name,
            )
    body.pop("pointsman", None)
    return body, req
