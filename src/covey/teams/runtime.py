"""A lead's team on the lead's host: starting teammates (sessions of kind `teammate`, each
hosted by a `SessionHost` as an asyncio task of this process), resuming the ones that were
live when a previous host died, waiting for the team at the lead's turn end, shutting it down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from covey.errors import ToolError, UserError
from covey.git.worktrees import Worktree, open_worktree
from covey.models.base import ToolSpec
from covey.sessions.state import TERMINAL_STATES, set_state
from covey.store import Store
from covey.store.session_meta import SessionMeta
from covey.store.sessions import SessionRow, get_session, insert_session, new_session_id
from covey.store.teams import (
    LEAD,
    MemberRow,
    TeamRow,
    add_member,
    end_team,
    ensure_team,
    list_members,
    send_message,
    team_of_lead,
    undelivered_count,
)
from covey.teams.bell import Bell
from covey.teams.ownership import check_globs, holders, overlap
from covey.teams.stop import unless_stopped
from covey.teams.text import idle_body, preamble
from covey.teams.tools import lean_tool
from covey.tools import CORE_TOOL_NAMES

if TYPE_CHECKING:
    from covey.agent.subagents import AgentInput
    from covey.sessions.host import SessionHost
    from covey.sessions.plan import SessionPlan
    from covey.tools.base import ToolContext

__all__ = ["RESUME_PROMPT", "TeamRuntime", "live_runtime"]

RESUME_PROMPT = (
    "Your team's host restarted. Continue your work where you left off (check TaskList; a "
    "tool call that was interrupted was not re-run)."
)
WAKE_PROMPT = "You have new messages."
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,39}")
STOPPED_REASON = "stopped by user"
_RESUMABLE = ("queued", "working", "needs_input", "interrupted")

_LIVE: dict[str, TeamRuntime] = {}
"""Lead session id → its team runtime in this process (teammates join through it)."""


def live_runtime(lead_session_id: str | None) -> TeamRuntime | None:
    return _LIVE.get(lead_session_id or "")


class TeamRuntime:
    """The lead's `TeammateLauncher`, and what its teammates share on this host."""

    lead = True

    def __init__(self, store: Store, plan: SessionPlan, lead_session_id: str) -> None:
        self.store = store
        self.plan = plan
        self.lead_session_id = lead_session_id
        with store.write() as conn:
            self.team_id = ensure_team(conn, lead_session_id).id
        self.bell = Bell()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.busy: set[str] = set()
        """Teammates working now (not idle, not finished)."""
        self.closing = False
        self._started = False
        self._lock: asyncio.Lock | None = None
        self._agent_spec: tuple[ToolSpec, ToolSpec] | None = None
        self.on_host: Callable[[SessionHost], None] | None = None
        """Called with each teammate's host once opened (a Ray node gates its tools)."""
        _LIVE[lead_session_id] = self

    @property
    def max_teammates(self) -> int:
        return self.plan.settings.teams.maxTeammates

    def team(self) -> TeamRow:
        with self.store.read() as conn:
            team = team_of_lead(conn, self.lead_session_id)
        assert team is not None
        return team

    def agent_spec(self, spec: ToolSpec) -> ToolSpec:
        """The lead's Agent tool, lean as the team tools (it goes with each of its requests)."""
        if self._agent_spec is None or self._agent_spec[0] != spec:
            self._agent_spec = (spec, lean_tool(spec))
        return self._agent_spec[1]

    def idle(self, name: str) -> None:
        self.busy.discard(name)
        self.bell.ring()

    def working(self, name: str) -> None:
        self.busy.add(name)

    # ---- starting teammates ----------------------------------------------------------------

    async def launch(self, args: AgentInput, ctx: ToolContext) -> str:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one spawn at a time: names and globs are checked in order
            return await self._spawn(args)

    async def _spawn(self, args: AgentInput) -> str:
        name = str(args.name)
        if not _NAME.fullmatch(name) or name == LEAD:
            raise ToolError(
                f"teammate name {name!r}: use 1-40 letters, digits, '.', '_' or '-' (not {LEAD})"
            )
        owns = list(getattr(args, "owns", None) or [])
        if owns:
            check_globs(owns)
        with self.store.read() as conn:
            members = list_members(conn, self.team_id)
            taken = next((m for m in members if m.name == name), None)
            row = get_session(conn, taken.session_id) if taken else None
        if taken is not None:
            _refuse_taken(name, taken, row, {m.name for m in members})
        self._check_room(name, owns, members)
        me = MemberRow(self.team_id, name, "", args.subagent_type, tuple(owns), args.isolation)
        plan = self._teammate_plan(me, [*members, me], model=args.model)
        worktree = await self._worktree(name, plan) if args.isolation == "worktree" else None
        if worktree is not None:
            plan = plan.moved_to(worktree.path)
        with self.store.write() as conn:
            row = SessionRow.new(
                id=new_session_id(conn),
                kind="teammate",
                name=name,
                parent_id=self.lead_session_id,
                cwd=str(plan.cwd),
                model=plan.model_name,
                permission_mode=plan.policy.mode,
                agent=plan.definition.name if plan.definition else None,
                meta=SessionMeta(
                    worktree=str(worktree.path) if worktree else None,
                    branch=worktree.branch if worktree else None,
                    repo=str(worktree.repo_root) if worktree else None,
                    provider=plan.model_name.partition(":")[0],
                    prompt=args.prompt[:2000],
                ),
            )
            insert_session(conn, row)
            add_member(
                conn,
                self.team_id,
                name,
                row.id,
                agent_type=args.subagent_type,
                owns=owns,
                isolation=args.isolation,
            )
        self._start(name, dataclasses.replace(plan, previous=row), args.prompt)
        result: dict[str, Any] = {
            "status": "teammate_spawned",
            "name": name,
            "agentId": row.id,
            "team_name": self.team().name,
        }
        if worktree is not None:
            result["branch"] = worktree.branch
        return json.dumps(result)

    async def _worktree(self, name: str, plan: SessionPlan) -> Worktree:
        """`isolation: "worktree"`: the teammate's own worktree and branch."""
        try:
            return await asyncio.to_thread(
                open_worktree,
                plan.cwd,
                f"team-{self.lead_session_id}-{name}",
                plan.settings.worktree,
            )
        except UserError as e:
            raise ToolError(f"teammate {name}: cannot make its worktree: {e}") from None

    def _check_room(self, name: str, owns: list[str], members: list[MemberRow]) -> None:
        teammates = [m for m in members if m.name != LEAD]
        with self.store.read() as conn:  # an ended teammate (completed, failed, stopped) is no
            rows = [get_session(conn, m.session_id) for m in teammates]  # longer counted
            owners = holders(conn, teammates)  # nor holds its globs
        live = sum(1 for r in rows if r is not None and r.state not in TERMINAL_STATES)
        if live >= self.max_teammates:
            raise ToolError(
                f"the team has {live} live teammates, the most teams.maxTeammates allows; "
                "give work to an idle teammate with SendMessage instead"
            )
        for m in owners:
            if owns and (found := overlap(owns, m.owns)) is not None:
                mine, theirs, path = found
                raise ToolError(
                    f"owns {mine!r} overlaps {theirs!r} owned by teammate {m.name} (both "
                    f"cover {path}); give each teammate its own files"
                )

    def _teammate_plan(
        self, me: MemberRow, members: list[MemberRow], *, model: str | None = None
    ) -> SessionPlan:
        from covey.sessions.plan import SessionOptions, plan_session

        lead = self.plan
        options = SessionOptions(
            cwd=lead.cwd,
            model=model or lead.model_spec,
            permission_mode=lead.policy.mode,
            allowed_tools=lead.options.allowed_tools,
            disallowed_tools=lead.options.disallowed_tools,
            append_system_prompt=preamble(me, members),
            kind="teammate",
            name=me.name,
            parent_id=self.lead_session_id,
            agent=me.agent_type,
            agents_json=lead.options.agents_json,
            environ=lead.options.environ,
            tools=_teammate_tools(lead.options.tools),
            # the lead's per-run limits and settings layers hold for each teammate's run
            max_turns=lead.options.max_turns,
            max_budget_usd=lead.options.max_budget_usd,
            fallback_model=lead.options.fallback_model,
            settings_overrides=lead.options.settings_overrides,
            setting_sources=lead.options.setting_sources,
        )
        try:
            return plan_session(options)
        except UserError as e:
            raise ToolError(f"cannot start teammate {me.name}: {e}") from None

    def _start(
        self, name: str, plan: SessionPlan, prompt: str, *, wait_first: bool = False
    ) -> None:
        self.busy.add(name)
        self.tasks[name] = asyncio.ensure_future(self._host(name, plan, prompt, wait_first))

    async def _host(self, name: str, plan: SessionPlan, prompt: str, wait_first: bool) -> None:
        from covey.sessions.host import SessionHost, outcome

        assert plan.previous is not None
        session_id = plan.previous.id
        host = None
        try:
            host = SessionHost.open(self.store, plan)
            if self.on_host is not None:
                self.on_host(host)
            if wait_first:
                self.busy.discard(name)
                async with host.lease.heartbeat():
                    stopped, mail = await unless_stopped(self.store, host, self._mail_for(name))
                if stopped:  # idle, outside a turn: nothing to cancel but the wait
                    set_state(self.store, session_id, host.lease.epoch, "stopped", STOPPED_REASON)
                    self._report(name, session_id, "stopped by the user", state="stopped")
                if stopped or not mail:
                    return
                self.busy.add(name)
            stopped, _ = await unless_stopped(self.store, host, host.run_turn(prompt))
            if stopped:
                self._report(name, session_id, "stopped by the user", state="stopped")
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the lead hears of it, with the state it left; nothing is lost
            final = outcome(e)
            self._report(
                name, session_id, f"{type(e).__name__}: {e}", final[0] if final else "failed"
            )
        finally:
            if host is not None:
                host.close()
            self.idle(name)

    async def _mail_for(self, name: str) -> bool:
        """Wait (idle) until mail for `name` is waiting; False when the team closes first."""
        while not self.closing:
            with self.store.read() as conn:
                if undelivered_count(conn, self.team_id, name):
                    return True
            await self.bell.wait()
        return False

    def _report(self, name: str, session_id: str, error: str, state: str = "failed") -> None:
        body = idle_body(session_id, error, [], state=state)
        with self.store.write() as conn:
            send_message(conn, self.team_id, name, LEAD, body, summary=state, kind="idle")

    async def start(self) -> None:
        """Once per host: resume the teammates a previous host left live (a `kill -9`)."""
        if self._started:
            return
        self._started = True
        with self.store.read() as conn:
            members = list_members(conn, self.team_id)
            rows = {m.name: get_session(conn, m.session_id) for m in members if m.name != LEAD}
        for m in members:
            row = rows.get(m.name)
            if row is None or m.name in self.tasks:
                continue
            if row.state in _RESUMABLE or row.state == "idle":
                plan = self._teammate_plan(m, members, model=row.model)
                plan = dataclasses.replace(plan, previous=row)
                idle = row.state == "idle"
                self._start(m.name, plan, WAKE_PROMPT if idle else RESUME_PROMPT, wait_first=idle)

    # ---- the lead's turn end -----------------------------------------------------------------

    async def settle(self) -> bool:
        """At the lead's turn end: True when mail for the lead is waiting (the turn goes on);
        False once every teammate is idle or done with no mail pending: the team is shut down."""
        await self.start()
        while True:
            live = [n for n, t in self.tasks.items() if not t.done()]
            with self.store.read() as conn:
                to_lead = undelivered_count(conn, self.team_id, LEAD)
                pending = sum(undelivered_count(conn, self.team_id, n) for n in live)
            if to_lead:
                return True
            if not (self.busy & set(live)) and not pending:
                await self.shutdown()
                return False
            await self.bell.wait()

    async def shutdown(self) -> None:
        """End every teammate's run (they are idle) and record the team's end."""
        self.closing = True
        self.bell.ring()
        tasks = [t for t in self.tasks.values() if not t.done()]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        with self.store.write() as conn:
            end_team(conn, self.team_id)

    async def aclose(self) -> None:
        """The lead's run is over: stop what still runs (an abnormal end) and forget it."""
        self.closing = True
        self.bell.ring()
        tasks = [t for t in self.tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        _LIVE.pop(self.lead_session_id, None)


def _teammate_tools(lead_tools: Sequence[str] | None) -> tuple[str, ...]:
    """The lead's tools (`--tools`; all by default) but AskUserQuestion: nobody answers a
    teammate's question (a teammate is hosted without a person to ask)."""
    offered = lead_tools if lead_tools is not None else (*CORE_TOOL_NAMES, "Agent")
    return tuple(n for n in offered if n != "AskUserQuestion")


def _refuse_taken(name: str, member: MemberRow, row: SessionRow | None, names: set[str]) -> None:
    """A name stays with its session for the team's life: tasks (`owner`) and mail name it,
    so a new session under an old name would take over the old one's tasks and mail."""
    state = row.state if row is not None else "gone"
    if state not in TERMINAL_STATES:
        raise ToolError(
            f"teammate {name} is already in the team ({state}); give it more work with "
            "SendMessage, or pick another name"
        )
    stem = name[:36]  # a suggestion must itself be a valid name (at most 40 characters)
    free = next(f"{stem}-{n}" for n in range(2, len(names) + 3) if f"{stem}-{n}" not in names)
    raise ToolError(
        f"teammate {name} has ended ({state}, session {member.session_id}) and its name stays "
        f"with it (its tasks and mail keep naming it): start the new teammate as {free!r}, "
        f"and give it {name}'s unfinished tasks with TaskUpdate {{owner: {free!r}}}"
    )


class NoNestedTeams:
    """A teammate's `TeammateLauncher`: teammates cannot start teammates, so its Agent tool
    (sent with each of its requests) has no `name`, and the lean schema of the team tools."""

    lead = False

    def __init__(self) -> None:
        self._spec: tuple[ToolSpec, ToolSpec] | None = None

    def agent_spec(self, spec: ToolSpec) -> ToolSpec:
        if self._spec is None or self._spec[0] != spec:
            self._spec = (spec, lean_tool(spec, drop=("name",)))
        return self._spec[1]

    async def launch(self, args: AgentInput, ctx: ToolContext) -> str:
        raise ToolError(
            "teammates cannot start teammates; call Agent without a name for a subagent, "
            f"or ask {LEAD} with SendMessage"
        )
