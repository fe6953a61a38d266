"""Claude Code's slash commands, as the session screen and `covey -p` read them.

A line starting with `/` is a command, never a prompt (`//text` is the prompt `/text`). This
module is the table of commands, the parser (`parse`, `headless`), completion (`matching`),
and what the read-only commands show, from the store and the session's plan. Running a
command against a screen's session is `covey.sessions.slash_run`; compacting a stored session
now is `compact_session`, shared by the screen, `covey -p "/compact"` and `covey compact ID`.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from covey.agent.definitions import load_definitions
from covey.errors import UserError
from covey.sessions.host import SessionHost
from covey.sessions.plan import SessionPlan
from covey.store import Store
from covey.store.sessions import SessionRow, list_sessions
from covey.store.usage import session_usage, usage_rows
from covey.tools.permissions import PermissionPolicy

__all__ = [
    "COMMANDS",
    "SCREEN_ONLY",
    "CompactRequest",
    "Invocation",
    "SlashCommand",
    "agents_lines",
    "compact_session",
    "headless",
    "help_lines",
    "matching",
    "parse",
    "permissions_lines",
    "sessions_lines",
    "usage_lines",
]


@dataclass(frozen=True)
class SlashCommand:
    name: str
    usage: str
    """How it is typed, with its argument (`/compact [instructions]`)."""
    help: str
    aliases: tuple[str, ...] = ()
    local: bool = False
    """It acts on a session hosted in this screen (plain `covey`), not an attached one."""

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def described(self) -> str:
        """What it does, with its aliases."""
        alias = f" (also {', '.join('/' + a for a in self.aliases)})" if self.aliases else ""
        return self.help + alias


COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("help", "/help", "the commands and keys"),
    SlashCommand(
        "clear", "/clear", "start a fresh session here (the old one stays resumable)", local=True
    ),
    SlashCommand(
        "compact",
        "/compact [instructions]",
        "summarise the conversation now, with an optional focus",
        local=True,
    ),
    SlashCommand(
        "usage",
        "/usage",
        "tokens, requests and cost of this session (subagents included)",
        aliases=("cost",),
    ),
    SlashCommand("model", "/model [NAME]", "show or switch the model for the next turns"),
    SlashCommand("agents", "/agents", "the subagent definitions in scope"),
    SlashCommand(
        "resume", "/resume [ID|NAME]", "continue another session in this screen", local=True
    ),
    SlashCommand("permissions", "/permissions", "the allow, ask and deny rules and the mode"),
    SlashCommand("mode", "/mode MODE", "switch the permission mode", local=True),
    SlashCommand("bg", "/bg", "send this session to the background (as ←)", local=True),
    SlashCommand("exit", "/exit", "leave (as Ctrl+C twice)", aliases=("quit",)),
)

_BY_NAME = {name: c for c in COMMANDS for name in c.names}

SCREEN_ONLY = tuple(c.name for c in COMMANDS if c.name != "compact")
"""The commands `covey -p` refuses: they only mean something in the session screen."""


@dataclass(frozen=True)
class Invocation:
    command: SlashCommand
    args: str
    """What follows the command word, stripped ("" when nothing)."""


def parse(line: str) -> Invocation | str:
    """A command, or the prompt to send (`//text` → `/text`). `UserError` for an unknown
    command, naming the close matches."""
    if not line.startswith("/"):
        return line
    if line.startswith("//"):
        return line[1:]
    word, _, args = line[1:].strip().partition(" ")
    command = _BY_NAME.get(word.lower())
    if command is None:
        raise UserError(unknown_notice(word))
    return Invocation(command, args.strip())


def unknown_notice(word: str) -> str:
    close = difflib.get_close_matches(word.lower(), list(_BY_NAME), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join('/' + c for c in close)}?" if close else "see /help"
    return f"unknown command /{word}: {hint} (nothing was sent; //text sends /text)"


def matching(text: str) -> list[SlashCommand]:
    """Completion: the commands whose name or alias starts with what is typed after `/`
    (all of them for a lone `/`); none once an argument is being typed or for `//`."""
    if not text.startswith("/") or text.startswith("//") or " " in text:
        return []
    prefix = text[1:].lower()
    return [c for c in COMMANDS if any(n.startswith(prefix) for n in c.names)]


def help_lines() -> list[str]:
    width = max(len(c.usage) for c in COMMANDS)
    lines = ["commands (a line starting with / is never sent; //text sends /text):"]
    lines += [f"  {c.usage:<{width}}  {c.described}" for c in COMMANDS]
    return lines


@dataclass(frozen=True)
class CompactRequest:
    """`covey -p "/compact [instructions]"`."""

    instructions: str | None


def headless(prompt: str) -> str | CompactRequest:
    """What `covey -p PROMPT` runs: the prompt, or a compaction. `UserError` for the
    commands that only the session screen has."""
    parsed = parse(prompt.strip()) if prompt.lstrip().startswith("/") else prompt
    if isinstance(parsed, str):
        return parsed
    if parsed.command.name == "compact":
        return CompactRequest(parsed.args or None)
    only = ", ".join("/" + name for name in SCREEN_ONLY)
    raise UserError(
        f"/{parsed.command.name} works in the session screen (plain covey), not with -p; "
        f"screen-only: {only}; -p takes /compact (//text sends the prompt /text)"
    )


def usage_lines(store: Store, session_id: str, *, context_window: int | None = None) -> list[str]:
    """What a session spent, from the usage ledger (its subagents and teammates included),
    and how much of the context window its latest request used."""
    with store.read() as conn:
        usage, cost = session_usage(conn, session_id)
        rows = usage_rows(conn, session_id=session_id, include_descendants=True)
    own = [r for r in rows if r.session_id == session_id and r.agent_path == "main"]
    lines = [
        f"session {session_id} · {len(rows)} requests · ${cost:.4f}"
        " (subagents and teammates included)",
        f"  tokens: input {usage.input:,} · output {usage.output:,} · "
        f"cache read {usage.cache_read:,} · cache write {usage.cache_write:,}",
    ]
    if own:
        last = own[-1].usage
        used = last.total_input + last.output
        of = f" of {context_window:,} ({used * 100 // context_window}%)" if context_window else ""
        lines.append(f"  context: {used:,} tokens{of} as of the latest request")
    return lines


def agents_lines(cwd: Path) -> list[str]:
    """The subagent definitions in scope of `cwd`, highest scope first (as
    `covey subagents list`)."""
    lines = ["subagent definitions (covey subagents list for details):"]
    for report in load_definitions(cwd).reports:
        defn = report.definition
        status = report.status
        detail = f" · {defn.description}" if defn is not None and defn.description else ""
        model = f" · model {defn.model}" if defn is not None else ""
        lines.append(f"  {report.name or '(no name)'}  [{report.scope}] {status}{model}{detail}")
    return lines


def permissions_lines(policy: PermissionPolicy) -> list[str]:
    def rules(kind: str, items: Sequence[object]) -> str:
        texts = [getattr(rule, "text", str(rule)) for rule in items]
        return f"  {kind}: {', '.join(texts) if texts else '-'}"

    return [
        f"permission mode: {policy.mode}  (/mode MODE to switch)",
        rules("allow", policy.allow),
        rules("ask", policy.ask),
        rules("deny", policy.deny),
    ]


def sessions_lines(store: Store, cwd: Path, *, limit: int = 10) -> list[str]:
    """The `/resume` picker: the latest sessions started in `cwd`."""
    with store.read() as conn:
        rows = list_sessions(conn, cwd=str(cwd), parent_id=None, limit=limit)
    if not rows:
        return [f"no earlier session in {cwd}"]
    lines = ["recent sessions here (/resume ID or NAME to continue one):"]
    lines += [f"  {_session_line(row)}" for row in rows]
    return lines


def _session_line(row: SessionRow) -> str:
    name = f" {row.name}" if row.name else ""
    summary = f" · {row.summary}" if row.summary else ""
    return f"{row.id}{name} · {row.state} · {row.kind}{summary}"[:160]


async def compact_session(store: Store, plan: SessionPlan, instructions: str | None = None) -> str:
    """Compact the stored session `plan` continues, now: its conversation becomes a summary
    (a `compact_boundary` with trigger `manual`). One line saying what happened."""
    if plan.previous is None:
        raise UserError("nothing to compact: the session has no conversation yet")
    host = SessionHost.open(store, plan)
    try:
        async with host.lease.heartbeat():
            before = len(host.agent.messages)
            done = await host.agent.compact("manual", instructions)
    finally:
        host.close()
    if not done:
        return (
            f"session {host.session_id}: nothing compacted (too few turns to summarise, "
            "or a PreCompact hook blocked it)"
        )
    after = len(host.agent.messages)
    return f"session {host.session_id} compacted: {before} messages → {after}"
