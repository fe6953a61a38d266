"""The fake provider's HTTP side: the server (its listen backlog) and the request handler
that reads a request, picks the scripted turn and answers it in the provider's wire format
(`covey.testing.fakeserver` describes the behaviour)."""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from covey.messages import Message, Usage, compacted_turns
from covey.models.script import ScriptFault, ScriptTurn
from covey.models.tokens import estimate_tokens
from covey.models.wire_rules import anthropic_violation, openai_violation
from covey.testing import _anthropic_wire, _openai_wire
from covey.testing._window import Limit
from covey.testing._wire import Reply, SseStream, malformed_frame, to_json

if TYPE_CHECKING:
    from covey.testing.fakeserver import FakeServer

__all__ = ["ANTHROPIC_PATH", "OPENAI_PATH", "HTTPServer", "Handler", "cut_connection"]

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "api-key"})
_MALFORMED = object()


@dataclass
class _Request:
    path: str
    is_openai: bool
    raw: bytes
    headers: dict[str, str]
    body: Any
    stream: bool
    record: dict[str, Any]
    """What `FakeServer.requests` and the log get."""

    @property
    def agent(self) -> str | None:
        return self.headers.get("x-covey-agent")


class HTTPServer(ThreadingHTTPServer):
    """Serves `Handler` on a thread per connection; `fake` is the `FakeServer` it serves."""

    daemon_threads = True
    request_queue_size = 1024
    """The listen backlog (socketserver's default is 5): a hundred sessions connecting at once
    must not overflow it, or the kernel drops connections and clients retry them a second
    (then 2 s, 4 s…) later, which is the fake server's cost, not the client's."""
    fake: FakeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a client hung up mid-response
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """TCP_NODELAY, as real providers' servers: each SSE event is a small write, and on a
    kept-alive connection Nagle's algorithm held each one until the client's delayed ACK
    (~40 ms a request)."""
    server: HTTPServer

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
        req = self._read()
        rejection = self._rejection(req.path, req.headers, req.body)
        if rejection is not None:
            fake._record(req.record)
            return self._error(*rejection, req.is_openai)
        messages = req.body["messages"]
        index = _turn_index(messages)
        req.record["turn"] = index
        turns = fake.script.turns_for(req.agent)
        if index >= len(turns):
            fake._record(req.record)
            who = f"agent {req.agent!r}" if req.agent in fake.script.agents else "the main agent"
            return self._error(
                400,
                f"fake server: the script for {who} has {len(turns)} turn(s); "
                f"the conversation asks for turn {index + 1}",
                req.is_openai,
            )
        turn = turns[index]
        if _no_tool_calls(req.body.get("tool_choice")):
            turn = turn.model_copy(update={"tool_calls": []})
        usage = turn.usage or Usage(
            input=estimate_tokens(req.raw.decode("utf-8", "replace")),
            output=estimate_tokens(to_json([turn.text, [c.input for c in turn.tool_calls]])),
        )
        wait = fake.window.admit(usage.input + usage.cache_write) if fake.window else None
        if wait is not None:
            req.record["rate_limited"] = True
            fake._record(req.record)
            message = "fake server: this request would exceed the rate limit window"
            headers = {"retry-after": f"{wait:.3f}"}
            return self._error(429, message, req.is_openai, headers, wait)
        if fake.usage is not None:
            fake.usage.count(usage.input + usage.cache_write, usage.output)
        self._answer(req, index, turn, usage)

    def _read(self) -> _Request:
        """The request as received, and its record (the turn and fault filled in later)."""
        path = urlsplit(self.path).path.rstrip("/")
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = _MALFORMED
        stream = isinstance(body, dict) and body.get("stream") is True
        record: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "path": path,
            "agent": headers.get("x-covey-agent"),
            "turn": None,
            "attempt": None,
            "fault": None,
            "stream": stream,
            "headers": {k: "<redacted>" if k in _SECRET_HEADERS else v for k, v in headers.items()},
            "body": None if body is _MALFORMED else body,
        }
        return _Request(path, path == OPENAI_PATH, raw, headers, body, stream, record)

    def _answer(self, req: _Request, index: int, turn: ScriptTurn, usage: Usage) -> None:
        """The turn's answer (after its `delay_s`), or the fault scripted for this attempt."""
        fake = self.server.fake
        attempt = fake._next_attempt(req.agent, index)
        fault = turn.faults[attempt] if attempt < len(turn.faults) else None
        req.record["attempt"] = attempt
        req.record["fault"] = fault.model_dump(exclude_none=True) if fault else None
        failed = fault is not None and (
            fault.status is not None or (fault.drop is None and fault.malformed is None)
        )
        if not failed:
            req.record["usage"] = usage.model_dump()  # what it bills (tests compare the ledger)
        fake._record(req.record)
        if turn.delay_s:
            time.sleep(turn.delay_s)
        if failed:
            assert fault is not None
            return self._fault_status(fault, req.is_openai)
        model = req.body.get("model")
        model = model if isinstance(model, str) else "fake-model"
        reply = Reply(index, turn, model, usage, seed=f"{req.agent or ''}/{index}")
        headers = self._provider_headers(req.is_openai)
        drop = fault.drop if fault is not None else None
        malformed = fault.malformed if fault is not None else None
        if not req.stream:
            if drop is not None:
                self.close_connection = True
                return cut_connection(self.connection)
            if malformed is not None:
                return self._malformed_json(headers)
            wire = _openai_wire if req.is_openai else _anthropic_wire
            return self._json(200, wire.message(reply), headers)
        if req.is_openai:
            options = req.body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            events = _openai_wire.stream(reply, include_usage=include_usage)
        else:
            events = _anthropic_wire.stream(reply)
        if fault is not None and malformed is not None:
            events.insert(fault.at or "mid_text", malformed_frame(malformed, openai=req.is_openai))
        self._sse(events, events.cut_for(drop) if drop else None, headers)

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
        limits: dict[str, Limit] = {}
        if fake.usage is not None:  # advertised: none left on a 429, as the made-up ones
            limits = fake.usage.limits()
            if limited:
                until = time.time() + reset_in
                limits = {k: Limit(v.limit, 0, until) for k, v in limits.items()}
        if fake.window is not None:
            limits |= fake.window.limits()
        make, req_id = (
            (_openai_wire.headers, _openai_wire.request_id())
            if is_openai
            else (_anthropic_wire.headers, _anthropic_wire.request_id())
        )
        return make(req_id, seen, limited=limited, reset_in=reset_in, enforced=limits or None)

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
            return cut_connection(self.connection)
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


def cut_connection(conn: socket.socket) -> None:
    """End a connection abruptly: no more bytes (no final chunk), both directions shut."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
