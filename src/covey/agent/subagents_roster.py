"""The agent types listed in the Agent tool's description, kept within a budget of characters.

Big collections of definitions would otherwise put tens of kilobytes into every request. Each
type gets the first sentence of its description (at most `SENTENCE_CHARS`); once the budget is
spent, the remaining types are listed by name only, grouped by scope (project, user, …). Every
name is always listed, so every type stays usable as `subagent_type`; the space all the names
take is reserved first, so only descriptions are dropped.
"""

from __future__ import annotations

import re

from covey.agent.definitions import AgentDefinition

__all__ = ["DEFAULT_LIST_BUDGET_CHARS", "SENTENCE_CHARS", "agent_roster", "first_sentence"]

DEFAULT_LIST_BUDGET_CHARS = 8_000
SENTENCE_CHARS = 120
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
NAMES_ONLY_HEADER = "More agent types (names only; each is a valid subagent_type):"


def first_sentence(text: str, limit: int = SENTENCE_CHARS) -> str:
    """The first sentence of the first non-empty line, cut to `limit` characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    sentence = _SENTENCE_END.split(line, maxsplit=1)[0]
    return sentence if len(sentence) <= limit else sentence[: limit - 1].rstrip() + "…"


def _names_only(definitions: list[AgentDefinition]) -> list[str]:
    groups: dict[str, list[str]] = {}
    for d in definitions:
        groups.setdefault(d.scope, []).append(d.name)
    return [
        NAMES_ONLY_HEADER,
        *(f"- {scope}: {', '.join(names)}" for scope, names in groups.items()),
    ]


def _names_only_sizes(definitions: list[AgentDefinition]) -> list[int]:
    """`sizes[i]`: characters (newlines included) `_names_only(definitions[i:])` takes; 0 for
    an empty rest. One pass from the end, so the roster is linear in the definitions."""
    sizes = [0] * (len(definitions) + 1)
    scopes: dict[str, int] = {}  # scope → its line's length so far, newline included
    for i in range(len(definitions) - 1, -1, -1):
        d = definitions[i]
        scopes[d.scope] = (
            scopes[d.scope] + len(d.name) + 2
            if d.scope in scopes
            else len(f"- {d.scope}: ") + len(d.name) + 1
        )
        sizes[i] = len(NAMES_ONLY_HEADER) + 1 + sum(scopes.values())
    return sizes


def agent_roster(
    definitions: list[AgentDefinition], budget: int = DEFAULT_LIST_BUDGET_CHARS
) -> str:
    """One line per described type, in precedence order, then the rest by name."""
    tails = _names_only_sizes(definitions)
    described: list[str] = []
    used = 0
    for i, d in enumerate(definitions):
        line = f"- {d.name}: {first_sentence(d.description)}"
        if used + len(line) + 1 + tails[i + 1] > budget:
            return "\n".join([*described, *_names_only(definitions[i:])])
        described.append(line)
        used += len(line) + 1
    return "\n".join(described)
