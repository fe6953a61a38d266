"""Command hooks with Claude Code's settings shape and exit-code contract.

`validate_hooks` reads one settings file's `hooks`, `merge_hooks` joins several, and a
`HookRunner` runs the handlers of an event and returns one `HookResult`.
"""

from __future__ import annotations

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
