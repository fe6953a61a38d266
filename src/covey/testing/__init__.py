"""Test doubles that ship with covey: `FakeServer`, a loopback fake provider speaking the
Anthropic and OpenAI HTTP APIs from a script (see `covey.testing.fakeserver`).

`FakeServer` is imported lazily, so `python -m covey.testing.fakeserver` runs the module once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from covey.testing.fakeserver import FakeServer

__all__ = ["FakeServer"]


def __getattr__(name: str) -> object:
    if name == "FakeServer":
        from covey.testing.fakeserver import FakeServer

        return FakeServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
