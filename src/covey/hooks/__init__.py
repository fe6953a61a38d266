"""Command hooks with Claude Code's settings shape and exit-code contract.

`validate_hooks` reads one settings file's `hooks`, `merge_hooks` joins several, and a
`HookRunner` runs the handlers of an event and returns one `HookResult`.

The runner's names load on first use (PEP 562): planning a session reads the hooks' settings
and runs none, so it does not import the runner (and asyncio with it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from covey.hooks.config import (
    EVENTS,
    TOOL_EVENTS,
    CallbackHook,
    CommandHook,
    HooksConfig,
    MatcherGroup,
    callback_hooks,
    matcher_matches,
    merge_hooks,
    validate_hooks,
)

if TYPE_CHECKING:
    from covey.hooks.result import OUTPUT_CAP, HookResult
    from covey.hooks.runner import HookCallback, HookRunner, HookStatistics

__all__ = [
    "EVENTS",
    "OUTPUT_CAP",
    "TOOL_EVENTS",
    "CallbackHook",
    "CommandHook",
    "HookCallback",
    "HookResult",
    "HookRunner",
    "HookStatistics",
    "HooksConfig",
    "MatcherGroup",
    "callback_hooks",
    "matcher_matches",
    "merge_hooks",
    "validate_hooks",
]

_LAZY = {
    "OUTPUT_CAP": "covey.hooks.result",
    "HookResult": "covey.hooks.result",
    "HookCallback": "covey.hooks.runner",
    "HookRunner": "covey.hooks.runner",
    "HookStatistics": "covey.hooks.runner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
