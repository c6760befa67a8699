"""A hold is closed even when the task closing it is cancelled mid-call (a client hanging up cancels the
handler with task.cancel(), which shielded anyio scopes do not stop)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pointsman.gateway.billing import Settlement


class SlowBilling:
    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.finished: list[str] = []

    async def settle(self, hold: Any, endpoint: Any, usage: Any) -> None:
        self.started.set()
        await asyncio.sleep(0.05)
        self.finished.append("settle")

    async def release(self, hold: Any) -> None:
        self.started.set()
        await asyncio.sleep(0.05)
        self.finished.append("release")


@pytest.mark.parametrize("how", ["settle", "release"])
def test_a_cancelled_caller_still_closes_the_hold(how: str) -> None:
    async def main() -> None:
        billing = SlowBilling()
        settlement = Settlement(billing, hold="h")  # type: ignore[arg-type]
        work = settlement.settle(None, None) if how == "settle" else settlement.release()  # type: ignore[arg-type]
        task = asyncio.ensure_future(work)
        await billing.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert billing.finished == [how]  # the backend call ran to the end before the cancel surfaced
        await settlement.settle(None, None)  # type: ignore[arg-type]
        assert billing.finished == [how]  # and only once

    asyncio.run(main())
