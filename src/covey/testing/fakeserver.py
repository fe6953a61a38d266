"""A loopback fake provider: speaks the Anthropic Messages API and OpenAI chat completions
over real HTTP, answering from a script (`covey.models.script`), so the real SDKs, their
retries and our adapters can be tested offline.

In a test::

    with FakeServer(load_script("turns.yaml"), log_path=tmp_path / "requests.jsonl") as srv:
        client = anthropic.Anthropic(api_key="k", base_url=srv.url)   # OpenAI: srv.url + "/v1"
        ...
        assert srv.requests[0]["turn"] == 0

From a shell (serves until SIGTERM/SIGINT; the port goes to the port file once listening)::

    python -m covey.testing.fakeserver --script turns.yaml --port 0 --port-file port.txt \\
        [--log requests.jsonl] [--host 127.0.0.1] [--require-key K]
        [--window-seconds 5 --window-input-tokens 16000 --window-requests 50]
        [--advertise-requests 4000 --advertise-input-tokens 2000000]
        [--advertise-output-tokens 400000]

Routes: `POST /v1/messages` (Anthropic) and `POST /v1/chat/completions` (OpenAI), both with
`"stream": true` (SSE, chunked transfer encoding) or without. The turn answered is the number
of assistant messages in the request, plus the turns a leading compaction summary stands for
(`<compact-summary turns="N">`, as the scripted model counts); the `x-covey-agent: NAME`
header picks the script's `agents[NAME]` turns (else the main turns). A turn beyond the
script is a 400.

Fault model: the server counts attempts per (agent header, turn). Attempt N at a turn gets
the turn's `faults[N]` if there is one, else the normal answer. So `faults: [{status: 429,
retry_after: 0.1}]` fails the first request and answers the retry. A fault is either

- `status`: that HTTP status with the provider's error body (`retry-after` header if
  `retry_after` is set; 429 rate limit, 529 overloaded, 500 server error, ...), or
- `drop`: the stream starts (200, SSE) and the connection is cut without the final
  zero-length chunk, so the client sees an incomplete chunked read, at `before_blocks` (after
  the message start / first role chunk), `mid_text` (after some text deltas) or `mid_tool`
  (after a tool call's start and a fragment of its arguments). A point the reply lacks falls
  back to `before_blocks`. On a non-streaming request the connection closes with no response.

A fault with neither `status` nor `drop` is a 500. `delay_s` is slept before any answer. A
request with `tool_choice` none is answered without the turn's tool calls.

A conversation the real API would refuse (a `tool_use` left unanswered, a `tool_result` that
answers nothing in the message before, an id twice, text before tool results, an empty
message; for OpenAI the `tool` message equivalents) is a 400 `invalid_request_error` in the
provider's words, before any turn is chosen (`covey.models.wire_rules`).

- `malformed`: the stream (200, SSE) carries one bad event at `at` (a drop point, default
  `mid_text`) and then goes on to its normal end: `not_json` is a `data:` line that is not JSON,
  `bad_index` a delta for a content block (OpenAI: a tool call) that never started. On a
  non-streaming request the body is not JSON.

A fault with none of `status`, `drop`, `malformed` is a 500. `delay_s` is slept before any answer.

Rate limits: every response carries the provider's rate-limit headers
(`anthropic-ratelimit-*`, `x-ratelimit-*`; made-up generous figures, none left on a 429).
With `advertised=AdvertisedLimits(requests, input_tokens, output_tokens)` (`--advertise-*`)
they report those limits a minute instead, with what the current minute has used of them and
its end as the reset, as the real APIs do (Anthropic's `tokens`: the more restrictive of
input and output; OpenAI's `tokens`: both together); they are not enforced.
With `window=RateWindow(seconds, input_tokens, requests)` the server enforces them in fixed
windows from its start: a request that would exceed one is answered 429 with `retry-after`
(the time left in the window), before any scripted fault is counted, and the headers report
the window as it stands (`covey.testing._window`).

Every request is recorded (`FakeServer.requests` and one JSONL line in the log): time, path,
agent, turn, attempt, fault, stream, headers (keys redacted) and the JSON body.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from covey.errors import UserError
from covey.models.script import Script, load_script
from covey.testing._handler import Handler, HTTPServer, cut_connection
from covey.testing._window import AdvertisedLimits, RateWindow, UsageCounter, WindowCounter

__all__ = ["AdvertisedLimits", "FakeServer", "RateWindow", "main"]


class FakeServer:
    """The fake provider on a background thread; a context manager that starts and stops it."""

    def __init__(
        self,
        script: Script,
        *,
        log_path: Path | None = None,
        require_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        window: RateWindow | None = None,
        advertised: AdvertisedLimits | None = None,
    ) -> None:
        self.script = script
        self.window = WindowCounter(window) if window is not None else None
        """The enforced rate window, if any (its `admitted` and `refused` counts)."""
        self.usage = UsageCounter(advertised) if advertised is not None else None
        """The advertised limits and what each minute used of them, if set."""
        self.log_path = log_path
        self.require_key = require_key
        self.requests: list[dict[str, Any]] = []
        """Every request, as logged (same records as the JSONL log)."""
        self._address = (host, port)
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str | None, int], int] = {}
        self._httpd: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._log: TextIO | None = None
        self._connections: dict[socket.socket, threading.Thread] = {}
        self.accepted = 0
        """TCP connections accepted so far (a client that keeps its connections alive opens
        one per concurrent request, not one per request)."""

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeServer is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """`http://HOST:PORT`, no trailing slash (OpenAI clients want `url + "/v1"`)."""
        return f"http://{self._address[0]}:{self.port}"

    def start(self) -> FakeServer:
        if self.log_path is not None:
            self._log = self.log_path.open("a", encoding="utf-8")
        self._httpd = HTTPServer(self._address, Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections (keep-alive clients see them closed) and wait
        a moment for their threads (one still sleeping a turn's `delay_s` is left behind)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            with self._lock:
                open_ = dict(self._connections)
            for conn in open_:
                cut_connection(conn)
            deadline = time.monotonic() + 2.0
            for thread in open_.values():
                thread.join(max(0.0, deadline - time.monotonic()))
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _next_attempt(self, agent: str | None, turn: int) -> int:
        with self._lock:
            n = self._attempts.get((agent, turn), 0)
            self._attempts[(agent, turn)] = n + 1
            return n

    def _record(self, record: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(record)
            if self._log is not None:
                self._log.write(json.dumps(record, ensure_ascii=False) + "\n")
                self._log.flush()

    def _track(self, conn: socket.socket, *, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections[conn] = threading.current_thread()
                self.accepted += 1
            else:
                self._connections.pop(conn, None)


def _write_port_file(path: Path, port: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, path)


def _advertised(args: argparse.Namespace) -> AdvertisedLimits | None:
    """`--advertise-*`: the limits given, the made-up figures for the others."""
    given = {
        field: value
        for field in ("requests", "input_tokens", "output_tokens")
        if (value := getattr(args, f"advertise_{field}")) is not None
    }
    for field, value in given.items():
        if value <= 0:
            flag = "--advertise-" + field.replace("_", "-")
            raise UserError(f"{flag} must be a positive number, not {value}")
    return AdvertisedLimits(**given) if given else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m covey.testing.fakeserver", description="Serve a script as a fake provider."
    )
    parser.add_argument("--script", required=True, type=Path, help="script file (YAML or JSON)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks one")
    parser.add_argument("--port-file", type=Path, help="write the port here once listening")
    parser.add_argument("--log", type=Path, help="append one JSON line per request here")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--require-key", help="reject requests that carry a different key")
    parser.add_argument("--window-seconds", type=float, help="enforce a rate window this long")
    parser.add_argument("--window-input-tokens", type=int, help="input tokens per window")
    parser.add_argument("--window-requests", type=int, help="requests per window")
    for kind in ("requests", "input-tokens", "output-tokens"):
        parser.add_argument(
            f"--advertise-{kind}",
            type=int,
            metavar="N",
            help=f"report a limit of N {kind.replace('-', ' ')} a minute in the rate-limit "
            "headers, counted per minute (not enforced)",
        )
    args = parser.parse_args(argv)
    prog = parser.prog
    try:
        script = load_script(args.script)
        window = None
        if args.window_seconds:
            window = RateWindow(args.window_seconds, args.window_input_tokens, args.window_requests)
        advertised = _advertised(args)
        server = FakeServer(
            script,
            log_path=args.log,
            require_key=args.require_key,
            host=args.host,
            port=args.port,
            window=window,
            advertised=advertised,
        )
        try:
            server.start()
        except OSError as e:
            raise UserError(
                f"cannot listen on {args.host}:{args.port}: {e.strerror or e}"
            ) from None
    except UserError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if args.port_file is not None:
            _write_port_file(args.port_file, server.port)
        print(f"fake provider listening on {server.url}", flush=True)
        stop.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
