"""Messages from other agents that join the conversation mid-turn, and what a turn's end
waits for (the seam agent teams hang off; `covey.teams` implements it over the store).

Before each model call the loop asks `collect()` for deliveries and adds each as a user
message. A delivery may carry a `receipt`: the persister calls it inside the very transaction
that writes the message's transcript entry, with that connection and the entry's seq, so the
sender's side can be marked delivered exactly once (a crash loses or repeats nothing).
When a turn would end, `turn_ended(final_text)` decides: True goes on (something arrived for
the next model call), False lets the run end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Delivery", "Mailbox", "Receipt"]

Receipt = Callable[[Any, int], None]
"""(the store connection inside the write transaction, the seq of the entry written)."""


@dataclass(frozen=True)
class Delivery:
    text: str
    """The user message that carries it."""
    receipt: Receipt | None = None


class Mailbox(Protocol):
    async def collect(self) -> list[Delivery]:
        """What arrived since the last call, to add before the next model call."""
        ...

    async def turn_ended(self, final_text: str) -> bool:
        """The turn ended with `final_text`: True to go on, False to end the run."""
        ...

    async def aclose(self) -> None:
        """The run is over (normally or not): stop whatever the mailbox started."""
        ...
