"""AskUserQuestion: ask the person a question, when someone is there to answer."""

from __future__ import annotations

from pydantic import Field

from covey.errors import ToolError
from covey.tools._common import optional
from covey.tools.base import Tool, ToolContext, ToolInput

__all__ = ["NO_USER", "AskUserQuestionInput", "AskUserQuestionTool"]

NO_USER = (
    "No user is available to answer (non-interactive run); proceed with your best judgement "
    "and state your assumptions."
)


class AskUserQuestionInput(ToolInput):
    question: str = Field(description="One clear question")
    options: list[str] | None = optional("Suggested answers to choose from")


class AskUserQuestionTool(Tool[AskUserQuestionInput]):
    name = "AskUserQuestion"
    description = (
        "Ask the user a question when a decision needs their input (a choice between "
        "approaches, an unclear requirement). Returns their answer."
    )
    input_model = AskUserQuestionInput
    read_only = True

    async def run(self, args: AskUserQuestionInput, ctx: ToolContext) -> str:
        if ctx.ask_user is None:
            raise ToolError(NO_USER)
        answer = await ctx.ask_user(args.question, list(args.options or []))
        return f"The user answered: {answer}"
