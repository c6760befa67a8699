"""A client that hangs up: stop working for it and close its credit hold at once, not when the sweeper runs.

Two gaps the ASGI stack leaves open:

- **Before the answer begins.** The server does not cancel a handler when its client goes; the handler would
  wait for the upstream's first token (up to the first-token timeout) holding the client's credit.
  ``unless_client_leaves(request, work)`` awaits ``work`` while watching the connection; when the client hangs
  up first, ``work`` is cancelled where it is (so its own cleanup, e.g. releasing the hold, runs) and
  ``ClientDisconnectedError`` is raised.
- **After it began.** Starlette cancels a streaming response when its client hangs up but leaves the body's
  async generator to the garbage collector (suspended at a ``yield``, or never started when the client left
  in between), so the generator's ``finally`` — where a stream is settled — would run late or never.
  ``RelayResponse`` closes its body iterator when the response ends, however it ends, and then awaits
  ``on_close`` (for what the generator could not do because it never started).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

import anyio
from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from pointsman.errors import ClientDisconnectedError

__all__ = ["RelayResponse", "unless_client_leaves"]

T = TypeVar("T")


async def unless_client_leaves(request: Request, work: Awaitable[T]) -> T:
    """``await work``, unless the client disconnects first: then ``work`` is cancelled (its cleanup runs) and
    ``ClientDisconnectedError`` raised. Call it only once the request body has been read."""
    task = asyncio.current_task()
    assert task is not None, "unless_client_leaves runs inside a task"
    receive = request.receive
    left = False

    async def watch() -> None:
        nonlocal left
        while (await receive())["type"] != "http.disconnect":
            pass  # the body was read: nothing else but the disconnect is expected
        left = True
        task.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        result = await work
    except asyncio.CancelledError:
        if left and task.uncancel() == 0:  # our cancel, and nobody else's
            raise ClientDisconnectedError("the client disconnected before the answer began") from None
        raise
    except BaseException:
        if left:  # our cancel was turned into another error inside ``work`` (e.g. its own timeout)
            task.uncancel()
        raise
    finally:
        watcher.cancel()
    if left:  # ``work`` finished as the client left and took the cancel as something else
        task.uncancel()
    return result


class RelayResponse(StreamingResponse):
    """A ``StreamingResponse`` that closes its body when it ends — completed, failed, or cancelled because the
    client left — and then awaits ``on_close`` (shielded from cancellation, like the body's own cleanup)."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]],
        media_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._body = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                aclose = getattr(self._body, "aclose", None)
                if aclose is not None:
                    await aclose()  # runs the generator's finally now if it was left at a yield
                await self._on_close()
