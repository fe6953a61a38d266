"""`covey --input-format stream-json --output-format stream-json`: covey as the command line
behind the Claude Agent SDK (its `cli_path`). The host itself is `covey.sessions.stream_host`;
this face reads stdin on a thread of its own (a pipe or a file alike) and writes the lines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from covey.cli.print_output import PrintOutput
from covey.cli.stream_flags import SdkFlags
from covey.errors import UserError
from covey.sessions.plan import SessionOptions

if TYPE_CHECKING:
    from covey.sessions.stream_host import StreamHost

__all__ = ["run_stream_json"]


def run_stream_json(options: SessionOptions, flags: SdkFlags) -> int:
    """Serve stdin to its end; 0 after the last turn (a turn's failure is its result line).
    Bad flags: a UserError before anything is read or written. 143 after a SIGTERM."""
    from covey.sessions.plan import find_previous
    from covey.sessions.stream_host import StreamHost
    from covey.store import Store
    from covey.store.sessions import get_session
    from covey.supervisor import ensure_supervisor

    if flags.fork_session and options.resume is None and not options.continue_last:
        raise UserError("--fork-session needs --resume ID or --continue")
    output = PrintOutput("stream-json", partial=flags.include_partial_messages)
    with Store.open() as store:
        previous = find_previous(store, options)
        if options.session_id is not None:
            with store.read() as conn:
                if get_session(conn, options.session_id) is not None:
                    raise UserError(
                        f"--session-id {options.session_id} is taken: continue that session "
                        "with --resume"
                    )
            if previous is not None and not flags.fork_session:
                raise UserError("--session-id names a new session: use it with --fork-session")
        host = StreamHost(
            store,
            options,
            previous,
            output,
            ask_sdk=flags.permission_prompt_tool == "stdio",
            fork=flags.fork_session,
            state_frames=_state_frames(),
            warn=lambda message: print(f"covey: warning: {message}", file=sys.stderr),
            wake_supervisor=ensure_supervisor,
        )
        host.check()
        return asyncio.run(_serve(host))


async def _serve(host: StreamHost) -> int:
    """Serve until stdin ends (0); SIGTERM (the SDK closing a CLI that does not finish in
    time) stops the running turn, records the session as stopped and lets go of it (143)."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await host.serve(_stdin_lines())
    except asyncio.CancelledError:
        return 128 + signal.SIGTERM
    return 0


def _state_frames() -> str | None:
    """`session_state_changed` lines: for the caller when it asks for them, else only for the
    SDK when it reads them (it sets CLAUDE_CODE_SDK_READS_SESSION_STATE)."""
    if os.environ.get("CLAUDE_CODE_EMIT_SESSION_STATE_EVENTS", "") not in ("", "0"):
        return "all"
    if os.environ.get("CLAUDE_CODE_SDK_READS_SESSION_STATE", "") not in ("", "0"):
        return "host"
    return None


async def _stdin_lines() -> AsyncIterator[str]:
    """stdin's lines as they arrive, read by a daemon thread (a blocked read never holds
    the process at its end)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str | None] = asyncio.Queue()

    def put(item: str | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody reads any more
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def read() -> None:
        for raw in sys.stdin.buffer:
            put(raw.decode("utf-8", errors="replace"))
        put(None)

    threading.Thread(target=read, name="covey-stdin", daemon=True).start()
    while (line := await queue.get()) is not None:
        yield line
