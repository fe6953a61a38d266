"""The root command: `covey [flags] [PROMPT]`. `covey -p PROMPT` runs one agent and prints."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from covey import __version__
from covey.cli.print_output import OUTPUT_FORMATS, PrintOutput
from covey.cli.prompt_input import prompt_text
from covey.cli.subcommands import SUBCOMMAND_LIST
from covey.errors import MaxTurnsExceeded, RunError, UserError
from covey.sessions.runner import SessionOptions, prepare_session

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
@click.version_option(__version__, "--version", prog_name="covey", message="%(prog)s %(version)s")
def root(
    prompt: str | None,
    print_mode: bool,
    background: bool,
    model: str | None,
    output_format: str,
    max_turns: int | None,
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
) -> None:
    """Run AI coding agents on this repository. `covey -p "fix the failing test"`."""
    if background:
        if print_mode:
            raise UserError("use either --bg or -p, not both")
        _background(prompt, name=name, agent=agent, model=model, permission_mode=permission_mode)
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
        run_session_screen(Path.cwd(), prompt=prompt, model=model, permission_mode=permission_mode)
        return
    if resume == "":
        raise UserError("--resume needs a session id or name with -p (see covey sessions)")
    if resume is not None and continue_last:
        raise UserError("use either --resume or --continue, not both")
    prompt = prompt_text(prompt, "-p")
    output = PrintOutput(output_format)
    session = prepare_session(
        SessionOptions(
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
        ),
        observers=[output.event],
        on_retry=output.retry,
    )
    output.start(session)
    try:
        result = asyncio.run(session.run(prompt))
    except KeyboardInterrupt:  # Ctrl+C, or `covey stop ID` from another terminal
        session.mark_stopped("interrupted")
        raise
    except MaxTurnsExceeded as e:
        output.finish(session, None, str(e), subtype="error_max_turns")
        sys.exit(e.exit_code)
    except RunError as e:
        output.finish(session, None, str(e), subtype="error_during_execution")
        sys.exit(e.exit_code)
    finally:
        session.close()
    output.finish(session, result)


def _background(
    prompt: str | None,
    *,
    name: str | None,
    agent: str | None,
    model: str | None,
    permission_mode: str | None,
) -> None:
    """`covey --bg PROMPT`: queue a background session and make sure the supervisor runs it."""
    from covey.sessions.background import BackgroundRequest, create_background_session
    from covey.store import Store
    from covey.supervisor import ensure_supervisor

    prompt = prompt_text(prompt, "--bg")
    store = Store.open()
    try:
        row = create_background_session(
            store,
            BackgroundRequest(
                cwd=Path.cwd(),
                prompt=prompt,
                name=name,
                agent=agent,
                model=model,
                permission_mode=permission_mode,
            ),
        )
    finally:
        store.close()
    ensure_supervisor()
    click.echo(f"backgrounded · {row.id} · {row.name or '-'}")
