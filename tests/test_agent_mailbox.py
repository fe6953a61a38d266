"""The loop's mailbox seam without a store: mail joins before each model call (after the
tool batch, mid-turn), its receipt travels with the message event, and the turn's end asks
the mailbox whether to go on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from covey.agent import Agent, AgentEvent, MessageAdded
from covey.agent.mailbox import Delivery
from covey.models.script import Script
from covey.models.scripted import ScriptedModel
from covey.tools.base import Tool, ToolContext, ToolInput
from covey.tools.permissions import PermissionPolicy


class ListMailbox:
    """Mail arrives by `post`; the turn's end goes on while `rounds` remain."""

    def __init__(self, rounds: int) -> None:
        self.waiting: list[str] = []
        self.rounds = rounds
        self.ended: list[str] = []
        self.closed = False

    def post(self, text: str) -> None:
        self.waiting.append(text)

    async def collect(self) -> list[Delivery]:
        mail, self.waiting = self.waiting, []
        return [Delivery(text, receipt=lambda conn, seq, t=text: None) for text in mail]

    async def turn_ended(self, final_text: str) -> bool:
        self.ended.append(final_text)
        if self.rounds == 0:
            return False
        self.rounds -= 1
        self.post(f"wake up {self.rounds}")
        return True

    async def aclose(self) -> None:
        self.closed = True


class PostInput(ToolInput):
    text: str


class Post(Tool[PostInput]):
    """Mail arrives while this tool runs (another agent sends it meanwhile)."""

    name = "Post"
    description = "Posts mail."
    input_model = PostInput

    def __init__(self, mailbox: ListMailbox) -> None:
        self.mailbox = mailbox

    async def run(self, args: PostInput, ctx: ToolContext) -> str:
        self.mailbox.post(args.text)
        return "posted"


def test_mail_joins_mid_turn_and_the_turn_end_asks_the_mailbox(tmp_path: Path) -> None:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"name": "Post", "input": {"text": "mid-turn mail"}}]},
        {"text": "first end"},
        {"text": "second end"},
    ]
    mailbox = ListMailbox(rounds=1)
    events: list[AgentEvent] = []
    model = ScriptedModel(Script.model_validate({"turns": turns}))
    policy = PermissionPolicy("bypassPermissions", [], [], [], tmp_path, tmp_path)
    agent = Agent(
        model, [Post(mailbox)], "sys", ToolContext(workspace=tmp_path), policy,
        observers=[events.append], mailbox=mailbox,
    )  # fmt: skip
    mailbox.post("before the first call")

    assert asyncio.run(agent.run("start")).result == "second end"
    users = [m for m in agent.messages if m.role == "user"]
    assert [m.text for m in users] == [
        "start",
        "before the first call",
        "",
        "mid-turn mail",
        "wake up 0",
    ]
    assert users[2].tool_results  # the batch's results first, then the mail, then turn 2
    assert mailbox.ended == ["first end", "second end"] and mailbox.closed
    carried = [e for e in events if isinstance(e, MessageAdded) and e.receipt is not None]
    assert [e.message.text for e in carried] == [
        "before the first call",
        "mid-turn mail",
        "wake up 0",
    ]
