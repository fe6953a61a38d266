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
    flags = RunFlags(
        model=model,
        output_format=output_format,
        max_turns=max_turns,
        max_budget_usd=max_budget_usd,
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
    )
    print_mode = _headless(sdk, print_mode, flags, prompt=prompt, background=background)
    if background:
        if print_mode:
            raise UserError("use either --bg or -p, not both")
        _background(prompt, flags)
    elif not print_mode:
        _session_screen(prompt, flags)
    else:
        _print(prompt, flags, sdk)


@dataclasses.dataclass(frozen=True)
class RunFlags:
    """The root command's flags that shape a run (the mode flags and SDK flags aside)."""

    model: str | None
    output_format: str
    max_turns: int | None
    max_budget_usd: float | None
    permission_mode: str | None
    allowed_tools: list[str]
    disallowed_tools: list[str]
    append_system_prompt: str | None
    resume: str | None
    continue_last: bool
    name: str | None
    worktree: str | None
    agent: str | None
    agents_json: str | None


def _headless(
    sdk: SdkFlags, print_mode: bool, flags: RunFlags, *, prompt: str | None, background: bool
) -> bool:
    """Whether the run is headless (-p): stream-json input implies it; the SDK flags need it."""
    if sdk.streaming:
        if flags.output_format != "stream-json":
            raise UserError("--input-format stream-json needs --output-format stream-json")
        if prompt is not None or background:
            raise UserError("--input-format stream-json reads its prompts from stdin only")
        return True  # stream-json input means headless, as in Claude Code
    if not print_mode and sdk.given():
        raise UserError(f"{sdk.given()[0]} works with -p or --input-format stream-json")
    return print_mode


def _refuse_given(given: dict[str, bool], why: str) -> None:
    """A UserError naming the first flag given, `{flag} {why}`."""
    for flag, is_given in given.items():
        if is_given:
            raise UserError(f"{flag} {why}")


def _session_screen(prompt: str | None, flags: RunFlags) -> None:
    """`covey [PROMPT]`: the interactive session screen (Textual loads only here)."""
    from covey.tui import run_session_screen

    refused = {
        "--output-format": flags.output_format != "text",
        "--max-turns": flags.max_turns is not None,
        "--allowedTools": bool(flags.allowed_tools),
        "--disallowedTools": bool(flags.disallowed_tools),
        "--append-system-prompt": flags.append_system_prompt is not None,
        "--resume": flags.resume is not None,
        "--continue": flags.continue_last,
        "--name": flags.name is not None,
        "--worktree": flags.worktree is not None,
        "--agent": flags.agent is not None,
        "--agents": flags.agents_json is not None,
    }
    _refuse_given(refused, "works with -p (or --bg), not in the session screen yet")
    run_session_screen(
        Path.cwd(),
        prompt=prompt,
        model=flags.model,
        permission_mode=flags.permission_mode,
        max_budget_usd=flags.max_budget_usd,
    )


def _print(prompt: str | None, flags: RunFlags, sdk: SdkFlags) -> None:
    """`covey -p PROMPT` (or stream-json input): run headless, print, exit with its code."""
    if flags.resume == "":
        raise UserError("--resume needs a session id or name with -p (see covey sessions)")
    if flags.resume is not None and flags.continue_last:
        raise UserError("use either --resume or --continue, not both")
    if not sdk.streaming:
        prompt = prompt_text(prompt, "-p")
    from covey.cli.print_output import PrintOutput
    from covey.sessions.plan import SessionOptions
    from covey.store import Store

    output = PrintOutput(flags.output_format, partial=sdk.include_partial_messages)
    options = SessionOptions(
        cwd=Path.cwd(),
        model=flags.model,
        max_turns=flags.max_turns,
        permission_mode=flags.permission_mode,
        allowed_tools=flags.allowed_tools,
        disallowed_tools=flags.disallowed_tools,
        append_system_prompt=flags.append_system_prompt,
        resume=flags.resume,
        continue_last=flags.continue_last,
        name=flags.name,
        worktree=flags.worktree,
        agent=flags.agent,
        agents_json=flags.agents_json,
        max_budget_usd=flags.max_budget_usd,
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


def _background(prompt: str | None, flags: RunFlags) -> None:
    """`covey --bg PROMPT`: queue a background session and make sure the supervisor runs it.
    Every flag is stored with the session and applied by the supervisor (none is dropped)."""
    from covey.sessions.background import BackgroundRequest, create_background_session
    from covey.store import Store
    from covey.supervisor import ensure_supervisor

    not_bg = {
        "--output-format": flags.output_format != "text",
        "--resume": flags.resume is not None,
        "--continue": flags.continue_last,
        "--worktree": flags.worktree is not None,
        "--agents": flags.agents_json is not None,
    }
    _refuse_given(
        not_bg,
        "does not work with --bg (a background session runs in a worktree "
        "of its own; continue one with covey reply or covey respawn)",
    )
    request = BackgroundRequest(
        cwd=Path.cwd(),
        prompt=prompt_text(prompt, "--bg"),
        name=flags.name,
        agent=flags.agent,
        model=flags.model,
        permission_mode=flags.permission_mode,
        allowed_tools=flags.allowed_tools,
        disallowed_tools=flags.disallowed_tools,
        max_turns=flags.max_turns,
        append_system_prompt=flags.append_system_prompt,
        max_budget_usd=flags.max_budget_usd,
    )
    with Store.open() as store:
        row = create_background_session(store, request)
    ensure_supervisor()
    click.echo(f"backgrounded · {row.id} · {row.name or '-'}")
