"""The root command: `covey [flags] [PROMPT]`. `covey -p PROMPT` runs one agent and prints."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from covey import __version__
from covey.cli.print_output import OUTPUT_FORMATS
from covey.cli.prompt_input import prompt_text
from covey.cli.stream_flags import SdkFlags, sdk_flag_options
from covey.cli.subcommands import SUBCOMMAND_LIST
from covey.errors import BudgetExceeded, MaxTurnsExceeded, RunError, UserError

if TYPE_CHECKING:
    from covey.cli.print_output import PrintOutput
    from covey.sessions.background import BackgroundRequest
    from covey.sessions.plan import SessionOptions
    from covey.store import Store

# What a run needs loads in the branch that runs it: `--version` and `--help` import click
# and nothing of the agent, `--bg` dispatch the plan and the store but no model SDK, loop or
# tool (tests/test_startup_imports.py pins this).

__all__ = ["root"]


def _split_tools(values: tuple[str, ...]) -> list[str]:
    return [v for v in values if v.strip()]


@click.command(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Other commands: covey COMMAND --help, for COMMAND in: " + SUBCOMMAND_LIST,
)
@click.argument("prompt", required=False)
@click.option("-p", "--print", "print_mode", is_flag=True, help="Run non-interactively and print.")
@click.option("--bg", "background", is_flag=True, help="Run in the background (see covey agents).")
@click.option("--model", help="sonnet|opus|haiku, anthropic:<id>, openai:<id>, scripted:<path>.")
@click.option(
    "--output-format",
    type=click.Choice(OUTPUT_FORMATS),
    default="text",
    show_default=True,
    help="With -p: text, one json result, or stream-json (a JSON event per line).",
)
@click.option("--max-turns", type=int, help="Stop after this many model turns.")
@click.option(
    "--max-budget-usd",
    type=float,
    metavar="USD",
    help="Stop before a model request this session's spend could not cover.",
)
@click.option("--permission-mode", help="default|acceptEdits|plan|dontAsk|bypassPermissions.")
@click.option(
    "--allowedTools", "--allowed-tools", "allowed_tools", multiple=True, help="Allow rules."
)
@click.option(
    "--disallowedTools", "--disallowed-tools", "disallowed_tools", multiple=True, help="Deny rules."
)
@click.option("--append-system-prompt", help="Text appended to the system prompt.")
@click.option(
    "-r",
    "--resume",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="ID|NAME",
    help="Continue a session by id, id prefix or name.",
)
@click.option(
    "-c", "--continue", "continue_last", is_flag=True, help="Continue the latest session here."
)
@click.option("--name", help="A name for the new session (usable with --resume).")
@click.option(
    "-w",
    "--worktree",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="NAME",
    help="Work in .covey/worktrees/NAME on branch worktree-NAME (generated name if omitted).",
)
@click.option("--agent", metavar="NAME", help="Run the main agent as this subagent definition.")
@click.option("--agents", "agents_json", metavar="JSON", help="Extra subagent definitions.")
@sdk_flag_options
@click.version_option(__version__, "--version", prog_name="covey", message="%(prog)s %(version)s")
def root(
    prompt: str | None,
    print_mode: bool,
    background: bool,
    model: str | None,
    output_format: str,
    max_turns: int | None,
    max_budget_usd: float | None,
    permission_mode: str | None,
    allowed_tools: tuple[str, ...],
    disallowed_tools: tuple[str, ...],
    append_system_prompt: str | None,
    resume: str | None,
    continue_last: bool,
    name: str | None,
    worktree: str | None,
    agent: str | None,
    agents_json: str | None,
    **sdk_flags: Any,
) -> None:
    """Run AI coding agents on this repository. `covey -p "fix the failing test"`."""
    sdk = SdkFlags.take(sdk_flags)
    if sdk.streaming:
        print_mode = True  # stream-json input means headless, as in Claude Code
        if output_format != "stream-json":
            raise UserError("--input-format stream-json needs --output-format stream-json")
        if prompt is not None or background:
            raise UserError("--input-format stream-json reads its prompts from stdin only")
    elif not print_mode and sdk.given():
        raise UserError(f"{sdk.given()[0]} works with -p or --input-format stream-json")
    if background:
        from covey.sessions.background import BackgroundRequest

        if print_mode:
            raise UserError("use either --bg or -p, not both")
        not_bg = {
            "--output-format": output_format != "text",
            "--resume": resume is not None,
            "--continue": continue_last,
            "--worktree": worktree is not None,
            "--agents": agents_json is not None,
        }
        for flag, given in not_bg.items():
            if given:
                raise UserError(
                    f"{flag} does not work with --bg (a background session runs in a worktree "
                    "of its own; continue one with covey reply or covey respawn)"
                )
        request = BackgroundRequest(
            cwd=Path.cwd(),
            prompt="",
            name=name,
            agent=agent,
            model=model,
            permission_mode=permission_mode,
            allowed_tools=_split_tools(allowed_tools),
            disallowed_tools=_split_tools(disallowed_tools),
            max_turns=max_turns,
            append_system_prompt=append_system_prompt,
            max_budget_usd=max_budget_usd,
        )
        _background(prompt, request)
        return
    if not print_mode:
        from covey.tui import run_session_screen  # Textual loads only for the screen

        refused = {
            "--output-format": output_format != "text",
            "--max-turns": max_turns is not None,
            "--allowedTools": bool(allowed_tools),
            "--disallowedTools": bool(disallowed_tools),
            "--append-system-prompt": append_system_prompt is not None,
            "--resume": resume is not None,
            "--continue": continue_last,
            "--name": name is not None,
            "--worktree": worktree is not None,
            "--agent": agent is not None,
            "--agents": agents_json is not None,
        }
        for flag, given in refused.items():
            if given:
                raise UserError(f"{flag} works with -p (or --bg), not in the session screen yet")
        run_session_screen(
            Path.cwd(),
            prompt=prompt,
            model=model,
            permission_mode=permission_mode,
            max_budget_usd=max_budget_usd,
        )
        return
    if resume == "":
        raise UserError("--resume needs a session id or name with -p (see covey sessions)")
    if resume is not None and continue_last:
        raise UserError("use either --resume or --continue, not both")
    if not sdk.streaming:
        prompt = prompt_text(prompt, "-p")
    from covey.cli.print_output import PrintOutput
    from covey.sessions.plan import SessionOptions
    from covey.store import Store

    output = PrintOutput(output_format, partial=sdk.include_partial_messages)
    options = SessionOptions(
        cwd=Path.cwd(),
        model=model,
        max_turns=max_turns,
        permission_mode=permission_mode,
        allowed_tools=_split_tools(allowed_tools),
        disallowed_tools=_split_tools(disallowed_tools),
        append_system_prompt=append_system_prompt,
        resume=resume,
        continue_last=continue_last,
        name=name,
        worktree=worktree,
        agent=agent,
        agents_json=agents_json,
        max_budget_usd=max_budget_usd,
        **sdk.session_fields(Path.cwd()),
    )
    if sdk.streaming:
        from covey.cli.stream_json import run_stream_json

        sys.exit(run_stream_json(options, sdk))
    if sdk.fork_session or sdk.permission_prompt_tool:
        raise UserError(
            "--fork-session and --permission-prompt-tool need --input-format stream-json"
        )
    assert prompt is not None
    with Store.open() as store:
        sys.exit(_print_run(store, options, prompt, output))


def _print_run(store: Store, options: SessionOptions, prompt: str, output: PrintOutput) -> int:
    """`covey -p`: plan, host and run one turn, print the result; the exit code."""
    import asyncio
    import signal

    from covey.cli.compact import compact_now
    from covey.sessions.host import SessionHost
    from covey.sessions.plan import find_previous, plan_session
    from covey.sessions.slash import CompactRequest, headless
    from covey.supervisor import ensure_supervisor

    parsed = headless(prompt)  # a slash command is never sent as a prompt
    if isinstance(parsed, CompactRequest):
        click.echo(compact_now(store, options, parsed.instructions))
        return 0
    plan = plan_session(options, find_previous(store, options))
    host = SessionHost.open(
        store,
        plan,
        observers=[output.event],
        on_retry=output.retry,
        wake_supervisor=ensure_supervisor,
    )
    output.start(host)
    # `covey stop` reaches a terminal's run as SIGINT; a process started by a shell in the
    # background inherits SIGINT ignored, which would lose the stop
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = asyncio.run(host.run_turn(parsed))
    except MaxTurnsExceeded as e:
        output.finish(host, None, str(e), subtype="error_max_turns")
        return e.exit_code
    except BudgetExceeded as e:
        output.finish(host, None, str(e), subtype="error_budget")
        return e.exit_code
    except RunError as e:
        output.finish(host, None, str(e), subtype="error_during_execution")
        return e.exit_code
    finally:
        host.close()
    output.finish(host, result)
    return 0


def _background(prompt: str | None, request: BackgroundRequest) -> None:
    """`covey --bg PROMPT`: queue a background session and make sure the supervisor runs it.
    Every flag is stored with the session and applied by the supervisor (none is dropped)."""
    from covey.sessions.background import create_background_session
    from covey.store import Store
    from covey.supervisor import ensure_supervisor

    prompt = prompt_text(prompt, "--bg")
    with Store.open() as store:
        row = create_background_session(store, dataclasses.replace(request, prompt=prompt))
    ensure_supervisor()
    click.echo(f"backgrounded · {row.id} · {row.name or '-'}")
