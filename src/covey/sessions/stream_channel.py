"""Both directions of the Claude Agent SDK's control protocol, over JSON lines.

Towards covey, the SDK sends `control_request` lines (`initialize`, `interrupt`, ...); covey
answers each with one `control_response`, `success` with a payload or `error` with a message
(`answer`, `refuse`). Towards the SDK, covey sends its own `control_request`s (`can_use_tool`,
`hook_callback`) and waits for the SDK's `control_response` (`request`); a request whose waiter
is cancelled (a turn interrupted while the SDK is asked) is withdrawn with a
`control_cancel_request`. When stdin ends no answer can come: waiting requests fail at once,
and so does every later one.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from typing import Any

__all__ = ["ControlChannel", "ControlError"]


class ControlError(Exception):
    """The SDK answered a control request with an error, or can no longer answer."""


class ControlChannel:
    def __init__(self, write: Callable[[dict[str, Any]], None]) -> None:
        self._write = write
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def pending(self) -> int:
        """How many requests to the SDK wait for an answer."""
        return len(self._pending)

    def answer(self, request_id: str, response: dict[str, Any] | None = None) -> None:
        """A `success` answer to the SDK's request `request_id`."""
        body = {"subtype": "success", "request_id": request_id, "response": response or {}}
        self._write({"type": "control_response", "response": body})

    def refuse(self, request_id: str, error: str) -> None:
        """An `error` answer to the SDK's request `request_id`."""
        body = {"subtype": "error", "request_id": request_id, "error": error}
        self._write({"type": "control_response", "response": body})

    async def request(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send a control request to the SDK and wait for its answer's payload; ControlError
        for an error answer or when stdin has ended."""
        if self._closed:
            raise ControlError("the SDK closed stdin; nobody can answer")
        request_id = f"covey_{next(self._ids)}_{os.urandom(4).hex()}"
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._write({"type": "control_request", "request_id": request_id, "request": request})
        try:
            return await future
        except asyncio.CancelledError:  # the waiter's cancel cancels the future too
            if future.cancelled():
                self._write({"type": "control_cancel_request", "request_id": request_id})
            raise
        finally:
            self._pending.pop(request_id, None)

    def resolve(self, response: object) -> None:
        """A `control_response` line's `response`: the answer to one of covey's requests
        (an answer to nothing waiting is dropped)."""
        if not isinstance(response, dict):
            return
        future = self._pending.get(str(response.get("request_id")))
        if future is None or future.done():
            return
        if response.get("subtype") == "error":
            future.set_exception(ControlError(str(response.get("error") or "error")))
        else:
            payload = response.get("response")
            future.set_result(payload if isinstance(payload, dict) else {})

    def close(self) -> None:
        """stdin ended: fail what waits, and every later request."""
        self._closed = True
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ControlError("the SDK closed stdin before answering"))
