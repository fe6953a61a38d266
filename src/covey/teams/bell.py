"""A wake-up for the members of a team hosted in one process: whoever changes the team (a
message, an idle turn, a shutdown) rings; waiters look at the store again. Waits are bounded,
so a change made elsewhere (another process) is seen within `POLL_S` anyway."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["POLL_S", "Bell"]

POLL_S = 0.25


class Bell:
    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def ring(self) -> None:
        if self._event is not None:
            self._event.set()
            self._event = None

    async def wait(self, timeout: float = POLL_S) -> None:
        """Until the next ring, or `timeout` seconds."""
        if self._event is None:
            self._event = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
