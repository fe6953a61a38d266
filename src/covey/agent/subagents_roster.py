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


def _size(lines: list[str]) -> int:
    return sum(len(line) + 1 for line in lines)


def agent_roster(
    definitions: list[AgentDefinition], budget: int = DEFAULT_LIST_BUDGET_CHARS
) -> str:
    """One line per described type, in precedence order, then the rest by name."""
    described: list[str] = []
    for i, d in enumerate(definitions):
        line = f"- {d.name}: {first_sentence(d.description)}"
        rest = definitions[i + 1 :]
        tail = _names_only(rest) if rest else []
        if _size([*described, line, *tail]) > budget:
            return "\n".join([*described, *_names_only(definitions[i:])])
        described.append(line)
    return "\n".join(described)
