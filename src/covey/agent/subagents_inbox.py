"""Background work an agent started (background subagents) and the notices it leaves.

Each task is owned by the agent that launched it: the loop drains finished notices into the
conversation before each model call, waits for the running ones before its turn may end, and
cancels whatever is left when its run ends abnormally (structured concurrency: nothing is
fire-and-forget).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["BackgroundTasks"]


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self._notices: list[str] = []

    @property
    def running(self) -> int:
        return len(self._tasks)

    def launch(self, work: Coroutine[Any, Any, str]) -> None:
        """Run `work` in the background; the text it returns becomes a notice."""
        task = asyncio.ensure_future(self._collect(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _collect(self, work: Coroutine[Any, Any, str]) -> None:
        notice = await work  # only then look the list up: drain() replaces it meanwhile
        self._notices.append(notice)

    def drain(self) -> list[str]:
        """The notices that arrived since the last drain, oldest first."""
        notices, self._notices = self._notices, []
        return notices

    async def wait_pending(self) -> bool:
        """Wait for every running task; True when notices are waiting to be delivered."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        return bool(self._notices)

    async def aclose(self) -> None:
        """Cancel what still runs and wait until it has stopped."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def statistics(self) -> dict[str, int]:
        return {"running": len(self._tasks), "notices_waiting": len(self._notices)}
