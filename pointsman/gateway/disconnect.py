"""A client that hangs up: stop working for it and close its credit hold at once, not when the sweeper runs.

The ASGI server does not cancel a handler when its client goes (uvicorn's ``send`` just drops what comes after),
so the gateway watches the connection itself, with one task per request (``ClientWatch``) from the moment the
request body has been read until the answer has been written:

- **Before the answer begins** (``watch.guard(work)``): the handler would otherwise wait for the upstream's
  first token (up to the first-token timeout) holding the client's credit. When the client hangs up first,
  ``work`` is cancelled where it is (so its own cleanup, e.g. releasing the hold, runs) and
  ``ClientDisconnectedError`` is raised.
- **After it began** (``RelayResponse``): a stream is written from the handler's own task — the response
  start and the held-back head go out in the same event-loop turn the handler returns in, with no task group
  and no second task as Starlette's ``StreamingResponse`` would use — and a hang-up cancels the write where it
  is. The body's async generator is then closed at once (the garbage collector would run its ``finally``, where
  a stream is settled, late or never) and ``on_close`` awaited (for what the generator could not do because it
  never started).

A disconnect outside those two windows is only recorded (``watch.left``), never turned into a stray
cancellation of the handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

import anyio
from fastapi.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from pointsman.errors import ClientDisconnectedError

__all__ = ["ClientWatch", "RelayResponse"]

T = TypeVar("T")


class ClientWatch:
    """Watches one request's connection for a hang-up, in one task, until ``stop()``. Start it in the handler's
    task once the request body has been read (the watch consumes ``receive``)."""

    def __init__(self, receive: Receive) -> None:
        assert asyncio.current_task() is not None, "ClientWatch is started inside the handler's task"
        self.left = False  # the client hung up
        self._scope: anyio.CancelScope | None = None  # inside guard() or watching(): a hang-up cancels it
        self._watcher = asyncio.get_running_loop().create_task(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass  # the body was read: nothing else but the disconnect is expected
        self.left = True
        if self._scope is not None:
            # A cancel scope, not task.cancel(): cleanup the handler shields (closing the upstream, settling the
            # hold) runs to its end, and the cancellation never escapes the watched block.
            self._scope.cancel()

    def stop(self) -> None:
        """Stop watching (the answer is written, or the request failed)."""
        self._scope = None
        self._watcher.cancel()

    @contextmanager
    def watching(self) -> Iterator[None]:
        """Within the block a hang-up cancels the handler's work where it is, and leaves the block as
        ``ClientDisconnectedError``; other failures pass through."""
        if self.left:
            raise ClientDisconnectedError("the client disconnected before the answer began")
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                yield
            finally:
                self._scope = None
        if scope.cancelled_caught:
            raise ClientDisconnectedError("the client disconnected")

    async def guard(self, work: Awaitable[T]) -> T:
        """``await work``, unless the client disconnects first: then ``work`` is cancelled (its cleanup runs)
        and ``ClientDisconnectedError`` raised."""
        try:
            with self.watching():
                return await work
        except ClientDisconnectedError:
            if asyncio.iscoroutine(work):
                work.close()  # never started when the client had already left: no "never awaited" warning
            raise


class RelayResponse(StreamingResponse):
    """The gateway's SSE response: written from the handler's task while ``watch`` looks out for a hang-up;
    closes its body when it ends — completed, failed, or cut short because the client left — and then awaits
    ``on_close`` (shielded from cancellation, like the body's own cleanup). Without ``watch`` it starts one."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        *,
        on_close: Callable[[], Awaitable[None]],
        watch: ClientWatch | None = None,
        media_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._body = content
        self._on_close = on_close
        self._watch = watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = self._watch or ClientWatch(receive)

        async def write(message: Message) -> None:
            try:
                await send(message)
            except OSError as exc:  # how an ASGI 2.4 server reports a client that left
                raise ClientDisconnectedError("the client disconnected") from exc

        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        try:
            with watch.watching():
                await write(start)
                async for chunk in self._body:  # the first one (the held-back head) is ready at once
                    await write({"type": "http.response.body", "body": chunk, "more_body": True})
                await write({"type": "http.response.body", "body": b"", "more_body": False})
        except ClientDisconnectedError:
            pass  # the client left: there is no one to tell
        finally:
            watch.stop()
            with anyio.CancelScope(shield=True):
                aclose = getattr(self._body, "aclose", None)
                if aclose is not None:
                    await aclose()  # runs the generator's finally now if it was left at a yield
                await self._on_close()
