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
With `window=RateWindow(seconds, input_tokens, requests)` the server enforces them in fixed
windows from its start: a request that would exceed one is answered 429 with `retry-after`
(the time left in the window), before any scripted fault is counted, and the headers report
the window as it stands (`covey.testing._window`).

Every request is recorded (`FakeServer.requests` and one JSONL line in the log): time, path,
agent, turn, attempt, fault, stream, headers (keys redacted) and the JSON body.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO
from urllib.parse import urlsplit

from covey.errors import UserError
from covey.messages import Message, Usage, compacted_turns
from covey.models.script import Script, ScriptFault, load_script
from covey.models.tokens import estimate_tokens
from covey.models.wire_rules import anthropic_violation, openai_violation
from covey.testing import _anthropic_wire, _openai_wire
from covey.testing._window import RateWindow, WindowCounter
from covey.testing._wire import Reply, SseStream, malformed_frame, to_json

__all__ = ["FakeServer", "RateWindow", "main"]

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "api-key"})
_MALFORMED = object()


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
    ) -> None:
        self.script = script
        self.window = WindowCounter(window) if window is not None else None
        """The enforced rate window, if any (its `admitted` and `refused` counts)."""
        self.log_path = log_path
        self.require_key = require_key
        self.requests: list[dict[str, Any]] = []
        """Every request, as logged (same records as the JSONL log)."""
        self._address = (host, port)
        self._lock = threading.Lock()
        self._attempts: dict[tuple[str | None, int], int] = {}
        self._httpd: _HTTPServer | None = None
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
        self._httpd = _HTTPServer(self._address, _Handler)
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
                _cut(conn)
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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024
    """The listen backlog (socketserver's default is 5): a hundred sessions connecting at once
    must not overflow it, or the kernel drops connections and clients retry them a second
    (then 2 s, 4 s…) later, which is the fake server's cost, not the client's."""
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hung up mid-response
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """TCP_NODELAY, as real providers' servers: each SSE event is a small write, and on a
    kept-alive connection Nagle's algorithm held each one until the client's delayed ACK
    (~40 ms a request)."""
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.fake._track(self.connection, open_=True)

    def finish(self) -> None:
        self.server.fake._track(self.connection, open_=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log is the record."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fake = self.server.fake
        path = urlsplit(self.path).path.rstrip("/")
        is_openai = path == OPENAI_PATH
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        agent = headers.get("x-covey-agent")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = _MALFORMED
        stream = isinstance(body, dict) and body.get("stream") is True
        record: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "path": path,
            "agent": agent,
            "turn": None,
            "attempt": None,
            "fault": None,
            "stream": stream,
            "headers": {k: "<redacted>" if k in _SECRET_HEADERS else v for k, v in headers.items()},
            "body": None if body is _MALFORMED else body,
        }
        rejection = self._rejection(path, headers, body)
        if rejection is not None:
            fake._record(record)
            return self._error(*rejection, is_openai)
        messages = body["messages"]
        index = _turn_index(messages)
        record["turn"] = index
        turns = fake.script.turns_for(agent)
        if index >= len(turns):
            fake._record(record)
            who = f"agent {agent!r}" if agent in fake.script.agents else "the main agent"
            return self._error(
                400,
                f"fake server: the script for {who} has {len(turns)} turn(s); "
                f"the conversation asks for turn {index + 1}",
                is_openai,
            )
        turn = turns[index]
        if _no_tool_calls(body.get("tool_choice")):
            turn = turn.model_copy(update={"tool_calls": []})
        usage = turn.usage or Usage(
            input=estimate_tokens(raw.decode("utf-8", "replace")),
            output=estimate_tokens(to_json([turn.text, [c.input for c in turn.tool_calls]])),
        )
        wait = fake.window.admit(usage.input + usage.cache_write) if fake.window else None
        if wait is not None:
            record["rate_limited"] = True
            fake._record(record)
            message = "fake server: this request would exceed the rate limit window"
            return self._error(429, message, is_openai, {"retry-after": f"{wait:.3f}"}, wait)
        attempt = fake._next_attempt(agent, index)
        fault = turn.faults[attempt] if attempt < len(turn.faults) else None
        record["attempt"] = attempt
        record["fault"] = fault.model_dump(exclude_none=True) if fault else None
        failed = fault is not None and (
            fault.status is not None or (fault.drop is None and fault.malformed is None)
        )
        if not failed:
            record["usage"] = usage.model_dump()  # what it bills (tests compare the ledger)
        fake._record(record)
        if turn.delay_s:
            time.sleep(turn.delay_s)
        if failed:
            assert fault is not None
            return self._fault_status(fault, is_openai)
        model = body.get("model") if isinstance(body.get("model"), str) else "fake-model"
        reply = Reply(index, turn, model, usage, seed=f"{agent or ''}/{index}")
        drop = fault.drop if fault is not None else None
        if drop is not None and not stream:
            self.close_connection = True
            return _cut(self.connection)
        malformed = fault.malformed if fault is not None else None
        if malformed is not None and not stream:
            return self._malformed_json(self._provider_headers(is_openai))
        if not stream:
            answer = _openai_wire.message(reply) if is_openai else _anthropic_wire.message(reply)
            return self._json(200, answer, self._provider_headers(is_openai))
        if is_openai:
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            events = _openai_wire.stream(reply, include_usage=include_usage)
        else:
            events = _anthropic_wire.stream(reply)
        if fault is not None and malformed is not None:
            events.insert(fault.at or "mid_text", malformed_frame(malformed, openai=is_openai))
        self._sse(events, events.cut_for(drop) if drop else None, self._provider_headers(is_openai))

    def _rejection(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, str] | None:
        """(status, message) when the request is not one the script can answer."""
        if path not in (ANTHROPIC_PATH, OPENAI_PATH) or self.command != "POST":
            return 404, f"fake server: no route for {self.command} {path}"
        key = headers.get("x-api-key") or _bearer(headers.get("authorization", ""))
        if not key:
            return 401, "fake server: missing x-api-key or Authorization: Bearer header"
        if self.server.fake.require_key not in (None, key):
            return 401, "fake server: invalid API key"
        if body is _MALFORMED:
            return 400, "fake server: the request body is not valid JSON"
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return 400, "fake server: the request body has no messages list"
        if path == OPENAI_PATH:
            problem = openai_violation(body["messages"])
        else:
            problem = anthropic_violation(body["messages"], tools_defined=bool(body.get("tools")))
        return (400, problem) if problem else None

    def _provider_headers(
        self, is_openai: bool, *, limited: bool = False, reset_in: float = 1.0
    ) -> dict[str, str]:
        fake = self.server.fake
        seen = len(fake.requests)
        enforced = fake.window.limits() if fake.window is not None else None
        make, req_id = (
            (_openai_wire.headers, _openai_wire.request_id())
            if is_openai
            else (_anthropic_wire.headers, _anthropic_wire.request_id())
        )
        return make(req_id, seen, limited=limited, reset_in=reset_in, enforced=enforced)

    def _error(
        self,
        status: int,
        message: str,
        is_openai: bool,
        extra: dict[str, str] | None = None,
        reset_in: float = 1.0,
    ) -> None:
        limited = status == 429
        headers = self._provider_headers(is_openai, limited=limited, reset_in=reset_in)
        headers |= extra or {}
        if is_openai:
            body = _openai_wire.error_body(status, message)
        else:
            body = _anthropic_wire.error_body(status, message, headers["request-id"])
        self._json(status, body, headers)

    def _fault_status(self, fault: ScriptFault, is_openai: bool) -> None:
        status = fault.status or 500
        extra = {}
        if fault.retry_after is not None:
            extra["retry-after"] = f"{fault.retry_after:g}"
        message = fault.message or f"fake server: scripted {status} ({_reason(status)})"
        self._error(status, message, is_openai, extra, fault.retry_after or 1.0)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
        data = to_json(body).encode()
        self.send_response(status, _reason(status))
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _malformed_json(self, headers: dict[str, str]) -> None:
        """A `malformed` fault on a non-streaming request: a 200 whose body is not JSON."""
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", "9")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(b'{"id": "m')

    def _sse(self, events: SseStream, cut: int | None, headers: dict[str, str]) -> None:
        """Send frames as HTTP chunks; with `cut`, stop after that many and drop the socket."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        for frame in events.frames[:cut]:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
        if cut is not None:
            self.close_connection = True
            return _cut(self.connection)
        self.wfile.write(b"0\r\n\r\n")


def _turn_index(messages: list[Any]) -> int:
    assistants = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
    first = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), None)
    content = first.get("content") if first is not None else None
    if isinstance(content, list):
        content = "".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    summarised = compacted_turns([Message.user(content)]) if isinstance(content, str) else 0
    return summarised + assistants


def _no_tool_calls(choice: object) -> bool:
    """`tool_choice` none, in either provider's shape."""
    return choice == "none" or (isinstance(choice, dict) and choice.get("type") == "none")


def _bearer(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _reason(status: int) -> str:
    if status == 529:
        return "Overloaded"
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _cut(conn: socket.socket) -> None:
    """End a connection abruptly: no more bytes (no final chunk), both directions shut."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)


def _write_port_file(path: Path, port: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{port}\n", encoding="utf-8")
    os.replace(tmp, path)


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
    args = parser.parse_args(argv)
    prog = parser.prog
    try:
        script = load_script(args.script)
        window = None
        if args.window_seconds:
            window = RateWindow(args.window_seconds, args.window_input_tokens, args.window_requests)
        server = FakeServer(
            script,
            log_path=args.log,
            require_key=args.require_key,
            host=args.host,
            port=args.port,
            window=window,
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
