"""``POST /v1/chat/completions``: authenticate, resolve the model field, reserve credit, call upstream with
fallbacks, answer (JSON or SSE) naming the endpoint that answered, settle what was used.

Streams pass each upstream chunk on as it arrives (only ``model`` is rewritten to the endpoint's name). A
failure after the first token ends the stream with an ``{"error": ...}`` event and ``data: [DONE]``; the
tokens generated so far are still settled.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response

from pointsman.errors import UpstreamError
from pointsman.gateway.billing import Settlement, Usage
from pointsman.gateway.dependencies import GatewayState, api_key_of
from pointsman.gateway.disconnect import ClientWatch, RelayResponse
from pointsman.gateway.fallback import Attempt, Candidate, StreamSession
from pointsman.gateway.requests import ChatRequest, parse_chat_request, read_body
from pointsman.gateway.routing import Resolution
from pointsman.tokens import count_message_tokens, estimate_tokens

router = APIRouter()
log = logging.getLogger("pointsman.gateway.chat")

_DONE = b"data: [DONE]\n\n"


def _wants_explain(request: Request, req: ChatRequest) -> bool:
    header = request.headers.get("x-pointsman-explain", "").lower()
    return header in ("1", "true", "yes") or bool(req.pointsman and req.pointsman.explain)


def _explain(resolution: Resolution, attempts: list[Attempt], endpoint: str) -> dict[str, Any]:
    return {
        "endpoint": endpoint,
        "router": resolution.router,
        "scorer_ms": round(resolution.scorer_s * 1000, 3),
        "candidates": resolution.explain(),
        "attempts": [a.as_dict() for a in attempts],
        "notes": list(resolution.details.get("notes", ())),
    }


def _usage_of(reply_usage: Any, messages: list[dict[str, Any]], text: str) -> Usage:
    """The provider's usage, or the gateway's own count (marked estimated) when it sent none."""
    if isinstance(reply_usage, dict) and reply_usage.get("completion_tokens") is not None:
        return Usage(int(reply_usage.get("prompt_tokens") or 0), int(reply_usage["completion_tokens"]))
    return Usage(count_message_tokens(messages), estimate_tokens(text), estimated=True)


@router.post("/v1/chat/completions")
async def chat_completions(request: Request) -> Response:
    started = time.perf_counter()
    state: GatewayState = request.app.state.gateway  # not Depends: this is the hot path
    settings = state.settings
    account = await state.billing.authenticate(api_key_of(request))
    body, req = parse_chat_request(await read_body(request, settings.max_body_bytes), settings)
    if settings.log_prompts:
        log.debug("request body: %s", body)
    messages: list[dict[str, Any]] = body["messages"]
    max_tokens = req.max_completion_tokens or req.max_tokens
    resolution = await state.resolver.resolve(req.model, messages, max_tokens)
    state.metrics.scorer_latency.observe(resolution.scorer_s)
    # more than fallback_depth: endpoints skipped while cooling down do not count against the depth
    choices = resolution.choices[: settings.fallback_depth * 4]
    candidates = [
        Candidate(c.endpoint.name, state.upstream(c.endpoint), state.providers[c.endpoint.api_style])
        for c in choices
    ]
    input_tokens = count_message_tokens(messages)
    max_out = max_tokens
    if max_out is None:  # cap the answer at what is reserved (and at what every candidate can produce)
        limits = [c.endpoint.max_output_tokens for c in choices if c.endpoint.max_output_tokens]
        max_out = min([settings.default_max_output_tokens, *limits])
    costliest = max(
        (c.endpoint for c in choices[: settings.fallback_depth]),
        key=lambda e: e.cost_usd(input_tokens, max_out),
    )
    request_id = "chatcmpl-" + uuid.uuid4().hex
    hold = await state.billing.reserve(account, costliest, input_tokens, max_out, request_id)
    by_name = {c.endpoint.name: c.endpoint for c in choices}
    explain = _wants_explain(request, req)
    upstream_body = {k: v for k, v in body.items() if k != "model"}
    if max_tokens is None:
        upstream_body["max_tokens"] = max_out
    state.metrics.overhead.observe(time.perf_counter() - started)

    watch = ClientWatch(request.receive)  # one task watches for a hang-up until the answer is written
    if not req.stream:
        try:
            candidate, reply, attempts = await watch.guard(state.engine.send(candidates, upstream_body))
        except BaseException:
            with anyio.CancelScope(shield=True):
                await state.billing.release(hold)
            raise
        finally:
            watch.stop()
        text = "".join(str((c.get("message") or {}).get("content") or "") for c in reply.get("choices") or [])
        usage = _usage_of(reply.get("usage"), messages, text)
        await state.billing.settle(hold, by_name[candidate.endpoint], usage)
        log.debug(
            "%s: %s answered after %d attempt(s), %d prompt + %d completion tokens",
            request_id,
            candidate.endpoint,
            len(attempts),
            usage.prompt_tokens,
            usage.completion_tokens,
        )
        reply["model"] = candidate.endpoint
        if reply.get("usage") is None:
            reply["usage"] = {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "total_tokens": usage.total_tokens,
                "estimated": True,
            }
        if explain:
            reply["pointsman"] = _explain(resolution, attempts, candidate.endpoint)
        state.metrics.requests.labels("chat", "200").inc()
        return Response(
            json.dumps(reply).encode(),
            media_type="application/json",
            headers=_headers(candidate, attempts, request_id),
        )

    try:
        session = await watch.guard(state.engine.open_stream(candidates, upstream_body))
    except BaseException:
        watch.stop()
        with anyio.CancelScope(shield=True):
            await state.billing.release(hold)
        raise
    state.metrics.requests.labels("chat", "200").inc()
    log.debug(
        "%s: streaming from %s after %d attempt(s)",
        request_id,
        session.candidate.endpoint,
        len(session.attempts),
    )
    extra = _explain(resolution, session.attempts, session.candidate.endpoint) if explain else None
    include_usage = bool((req.stream_options or {}).get("include_usage"))
    endpoint = by_name[session.candidate.endpoint]
    settlement = Settlement(state.billing, hold)
    chunks = _relay(state, session, settlement, endpoint, messages, include_usage, extra)
    headers = _headers(session.candidate, session.attempts, request_id)
    headers.update({"cache-control": "no-cache", "x-accel-buffering": "no"})

    async def unrelayed() -> None:  # a no-op unless the client left before the relay began
        await session.aclose()
        deltas = [c.get("delta") or {} for chunk in session.head for c in chunk.get("choices") or ()]
        text = "".join(d.get("content") or "" for d in deltas)
        await settlement.settle(endpoint, _usage_of(None, messages, text))

    return RelayResponse(
        chunks, on_close=unrelayed, watch=watch, media_type="text/event-stream", headers=headers
    )


def _headers(candidate: Candidate, attempts: list[Attempt], request_id: str) -> dict[str, str]:
    return {
        "x-pointsman-endpoint": candidate.endpoint,
        "x-pointsman-attempts": str(sum(1 for a in attempts if not a.outcome.startswith("skipped"))),
        "x-request-id": request_id,
    }


async def _relay(
    state: GatewayState,
    session: StreamSession,
    settlement: Settlement,
    endpoint: Any,
    messages: list[dict[str, Any]],
    include_usage: bool,
    extra: dict[str, Any] | None,
) -> AsyncIterator[bytes]:
    """The client's SSE stream: the held-back head, then each chunk as it arrives; settles at the end."""
    name = session.candidate.endpoint
    usage: Any = None
    texts: list[str] = []
    dumps = json.dumps

    def encode(chunk: dict[str, Any]) -> bytes | None:
        nonlocal usage, extra
        if chunk.get("usage") is not None:
            usage = chunk["usage"]
            if not include_usage:
                if not chunk.get("choices"):
                    return None
                chunk = {k: v for k, v in chunk.items() if k != "usage"}
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                texts.append(content)
        chunk["model"] = name
        if extra is not None:
            chunk["pointsman"], extra = extra, None
        return b"data: " + dumps(chunk).encode() + b"\n\n"

    try:
        head = [data for data in map(encode, session.head) if data is not None]
        if head:  # one write: the held-back chunks and the first token leave together, at once
            yield b"".join(head)
        rest = session.rest() if state.telemetry is None else state.telemetry.watch(session)
        async for chunk in rest:
            data = encode(chunk)
            if data is not None:
                yield data
        if include_usage and usage is None:  # the provider sent none: the gateway's own count, marked
            counted = _usage_of(None, messages, "".join(texts))
            last = session.head[-1] if session.head else {}
            synthetic = {
                "id": last.get("id", ""),
                "object": "chat.completion.chunk",
                "created": last.get("created", 0),
                "model": name,
                "choices": [],
                "usage": {
                    "prompt_tokens": counted.prompt_tokens,
                    "completion_tokens": counted.completion_tokens,
                    "total_tokens": counted.total_tokens,
                    "estimated": True,
                },
            }
            yield b"data: " + dumps(synthetic).encode() + b"\n\n"
        yield _DONE
    except UpstreamError as exc:
        state.engine.stream_failed(session, exc)
        log.warning("stream from %s failed after the first token: %s", name, exc.message)
        error = exc.to_openai()
        error["error"] = {
            **exc.to_openai()["error"],  # type: ignore[dict-item]
            "message": f"the stream from {name} broke after it started; the answer is truncated: {exc.message}",
        }
        yield b"data: " + dumps(error).encode() + b"\n\n"
        yield _DONE
    finally:
        with anyio.CancelScope(shield=True):
            await session.aclose()
            await settlement.settle(endpoint, _usage_of(usage, messages, "".join(texts)))
