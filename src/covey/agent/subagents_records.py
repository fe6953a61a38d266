"""What the host records of each subagent, as protocols the Agent tool calls.

`covey.sessions.subagents` implements them over the store (a session row, a transcript, usage
rows and the final state per subagent); `MemoryRecorder` keeps nothing durable.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from covey.agent.definitions import AgentDefinition
from covey.agent.loop import Observer

__all__ = ["AgentPaths", "ChildRecord", "MemoryRecorder", "SubagentNotice", "SubagentRecorder"]


class ChildRecord(Protocol):
    """One subagent as the host records it."""

    @property
    def agent_id(self) -> str: ...

    @property
    def agent_path(self) -> str:
        """`main/<name>-<n>`: who spent what, in the usage ledger."""
        ...

    @property
    def workspace(self) -> Path:
        """Where the child works: the parent's directory, or its own worktree."""
        ...

    @property
    def observers(self) -> list[Observer]:
        """Where the child's events go (its transcript)."""
        ...

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Held while the child runs (after any wait in the queue)."""
        ...

    def finish(self, state: str, reason: str | None) -> dict[str, Any]:
        """Record the end (completed | failed | stopped); returns trailer fields to add
        (a kept worktree's `worktreePath` and `worktreeBranch`)."""
        ...


@dataclass(frozen=True)
class SubagentNotice:
    """Something a UI may show about a subagent: it waits in the queue, starts, ends."""

    kind: Literal["queued", "started", "finished"]
    agent_id: str
    agent_type: str
    description: str
    parent_session_id: str
    waiting: int = 0
    """Queued: how many spawns wait for a slot, this one included."""
    state: str | None = None


class SubagentRecorder(Protocol):
    def start(
        self,
        definition: AgentDefinition,
        description: str,
        parent_agent_path: str,
        parent_session_id: str,
        *,
        model: str,
        cwd: Path,
        isolation: str | None = None,
    ) -> ChildRecord: ...

    def notice(self, notice: SubagentNotice) -> None: ...


@dataclass
class _MemoryChild:
    agent_id: str
    agent_path: str
    workspace: Path
    observers: list[Observer] = field(default_factory=list)
    state: str = "queued"

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.state = "working"
        yield

    def finish(self, state: str, reason: str | None) -> dict[str, Any]:
        self.state = state
        return {}


class AgentPaths:
    """Numbers children per parent and definition: `main/reviewer-1`, `main/reviewer-2`…"""

    def __init__(self) -> None:
        self._numbers: dict[tuple[str, str], int] = {}

    def next(self, parent_agent_path: str, name: str) -> str:
        key = (parent_agent_path, name)
        n = self._numbers[key] = self._numbers.get(key, 0) + 1
        return f"{parent_agent_path}/{name}-{n}"


class MemoryRecorder:
    """Records nothing durable: for the agent layer on its own (tests, embedding)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._paths = AgentPaths()
        self.children: list[_MemoryChild] = []
        self.notices: list[SubagentNotice] = []

    def start(
        self,
        definition: AgentDefinition,
        description: str,
        parent_agent_path: str,
        parent_session_id: str,
        *,
        model: str,
        cwd: Path,
        isolation: str | None = None,
    ) -> ChildRecord:
        path = self._paths.next(parent_agent_path, definition.name)
        child = _MemoryChild(f"agent{next(self._ids):04d}", path, cwd)
        self.children.append(child)
        return child

    def notice(self, notice: SubagentNotice) -> None:
        self.notices.append(notice)
