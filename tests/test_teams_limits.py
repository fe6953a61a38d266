"""A teammate runs under its lead's per-run limits: `covey -p --max-turns N` caps every
teammate's run at N model calls too, and the lead hears why the teammate stopped."""

from __future__ import annotations

from pathlib import Path

from covey.store import Store
from covey.store.sessions import list_sessions
from covey.store.teams import mailbox
from teamtools import call, fake, requests_of, run, spawn, texts

BUSY = {
    "turns": [
        {"tool_calls": [spawn("alice", "List the tasks, many times.")]},
        {"text": "waiting for alice"},
        {"text": "LEAD-FINAL"},
        {"text": "spare"},
    ],
    "agents": {
        "alice": {
            "turns": [
                *({"tool_calls": [call("TaskList")]} for _ in range(5)),
                {"text": "ALICE-DONE"},
            ]
        }
    },
}


def test_max_turns_of_the_lead_caps_each_teammate(git_repo: Path) -> None:
    with fake(BUSY) as (srv, env):
        result = run(git_repo, env, "--max-turns", "3")
    assert result.code == 0, result.err
    assert result.json()["result"] == "LEAD-FINAL"
    assert len(requests_of(srv, "alice")) == 3
    told = texts(requests_of(srv, None)[-1])
    assert "reached the maximum of 3 turns" in told and "ALICE-DONE" not in told
    with Store.open() as store, store.read() as conn:
        (alice,) = list_sessions(conn, kinds=["teammate"])
    assert alice.state == "failed" and alice.reason is not None
    assert alice.reason.startswith("max_turns")


def test_a_teammate_plan_keeps_every_per_run_limit_of_the_lead(git_repo: Path) -> None:
    from covey.sessions.plan import SessionOptions, plan_session
    from covey.store.sessions import SessionRow, insert_session
    from covey.store.teams import MemberRow
    from covey.teams.runtime import TeamRuntime

    options = SessionOptions(
        cwd=git_repo,
        model="anthropic:claude-sonnet-4-5",
        max_turns=4,
        max_budget_usd=0.25,
        fallback_model="anthropic:claude-haiku-4-5",
        settings_overrides={"teams": {"maxTeammates": 2}},
        environ={"ANTHROPIC_API_KEY": "test-key", "COVEY_EXPERIMENTAL_AGENT_TEAMS": "1"},
    )
    lead = plan_session(options)
    with Store.open() as store:
        with store.write() as conn:
            insert_session(conn, SessionRow.new(id="lead0001", kind="print", cwd=str(git_repo),
                                                model=lead.model_name))  # fmt: skip
        runtime = TeamRuntime(store, lead, "lead0001")
        me = MemberRow(runtime.team_id, "alice", "", None, (), None)
        mate = runtime._teammate_plan(me, [me])
    assert mate.max_turns == 4
    assert mate.options.max_budget_usd == 0.25
    assert mate.options.fallback_model == "anthropic:claude-haiku-4-5"
    assert mate.settings.teams.maxTeammates == 2


def test_a_teammate_stopped_by_the_budget_is_reported_stopped(git_repo: Path) -> None:
    """The session budget covers the team: alice's first answer is billed $0.12, so her second
    request does not fit ($0.20; a request's estimate is ≈ $0.07, the lead's requests in flight
    count too). She ends `stopped`, and the notice the lead gets says `stopped` (not
    `failed`)."""
    costly = {"input": 40_000, "output": 10}
    script = {
        "turns": [
            {"tool_calls": [spawn("alice", "List the tasks.")]},
            {"text": "waiting for alice"},
            {"text": "LEAD-FINAL"},
        ],
        "agents": {
            "alice": {"turns": [{"tool_calls": [call("TaskList")], "usage": costly}, {"text": "x"}]}
        },
    }
    with fake(script) as (srv, env):
        run(git_repo, env, "--max-budget-usd", "0.20")
        assert len(requests_of(srv, "alice")) == 1, "alice's second request did not fit"
    with Store.open() as store, store.read() as conn:
        (alice,) = list_sessions(conn, kinds=["teammate"])
        (team_id,) = [r[0] for r in conn.execute("SELECT id FROM teams")]
        notices = [m for m in mailbox(conn, team_id) if m.sender == "alice"]
    assert alice.state == "stopped" and alice.reason and alice.reason.startswith("budget")
    assert [(m.kind, m.summary) for m in notices] == [("idle", "stopped")], notices
    assert "budget" in notices[0].body
