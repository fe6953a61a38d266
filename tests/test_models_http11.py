"""covey's HTTP/1.1 client (`covey.models._http11`) against real sockets: servers written
here byte for byte where the fake provider cannot misbehave the way a test needs (a kept-alive
connection closed under a request, a redirect, silence, TLS), and the adapter on top.

The fake provider's own faults (dropped streams, malformed events, error statuses) go through
this client in `test_models_contract.py`, which holds covey's outcome to the official SDKs'.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme

from covey.errors import ModelError
from covey.messages import Message
from covey.models import _http11
from covey.models._http11 import (
    ConnectError,
    ConnectionDropped,
    HTTP11Client,
    Timeout,
)
from covey.models.anthropic import AnthropicModel
from covey.models.base import ModelRequest
from covey.models.retry import RetryPolicy
from covey.models.script import Script
from covey.testing.fakeserver import FakeServer

SSE_OK = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"m","type":"message",'
    b'"role":"assistant","model":"c","content":[],"stop_reason":null,"usage":{"input_tokens":3,'
    b'"output_tokens":0}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"hello"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":1}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """(head, body) of one request with a Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


def response(status: str, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Served:
    """A server of `handler`s; `stop` ends every connection's handler and closes it."""

    def __init__(self, server: asyncio.Server, tasks: set[asyncio.Task[None]]) -> None:
        self.server, self.tasks = server, tasks
        self.sockets = server.sockets

    async def stop(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> Served:
    tasks: set[asyncio.Task[None]] = set()

    async def each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    server = await asyncio.start_server(each, "127.0.0.1", 0, ssl=tls)
    return Served(server, tasks)


def url_of(server: Served, path: str = "/v1/messages", scheme: str = "http") -> Any:
    port = server.sockets[0].getsockname()[1]
    return urlsplit(f"{scheme}://127.0.0.1:{port}{path}")


async def post(client: HTTP11Client, url: Any, body: bytes = b"{}") -> tuple[int, bytes]:
    async with client.post(url, body, {"content-type": "application/json"}) as r:
        return r.status_code, await r.aread()


def test_a_kept_alive_connection_serves_the_next_request() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                _, body = await read_request(reader)
            except asyncio.IncompleteReadError:
                break
            writer.write(response("200 OK", b"echo " + body))
            await writer.drain()
        writer.close()

    async def run() -> list[tuple[int, bytes]]:
        server = await serving(handler)
        client = HTTP11Client()
        answers = [await post(client, url_of(server), b"%d" % i) for i in range(3)]
        await client.aclose()
        await server.stop()
        return answers

    assert asyncio.run(run()) == [(200, b"echo 0"), (200, b"echo 1"), (200, b"echo 2")]
    assert connections == 1


def test_a_kept_alive_connection_closed_under_a_request_is_replaced_once() -> None:
    """The server reads the second request on the old connection and hangs up without an
    answer (what a server closing idle connections does at the wrong moment): the client
    sends it again on a new connection, and the caller never sees the failure."""
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await read_request(reader)
        seen.append(body)
        writer.write(response("200 OK", b"first answer on this connection"))
        await writer.drain()
        try:
            _, body = await read_request(reader)
            seen.append(body)
        except asyncio.IncompleteReadError:
            pass
        writer.close()  # no answer to the second request

    async def run() -> list[tuple[int, bytes]]:
        server = await serving(handler)
        client = HTTP11Client()
        answers = [await post(client, url_of(server), b"%d" % i) for i in range(2)]
        await client.aclose()
        await server.stop()
        return answers

    answers = asyncio.run(run())
    assert [status for status, _ in answers] == [200, 200]
    assert seen == [b"0", b"1", b"1"]


def test_a_fresh_connection_cut_before_the_answer_is_a_dropped_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        await writer.drain()
        writer.close()

    async def run() -> None:
        server = await serving(handler)
        client = HTTP11Client()
        try:
            with pytest.raises(ConnectionDropped):
                await post(client, url_of(server))
        finally:
            await client.aclose()
            await server.stop()

    asyncio.run(run())


def test_307_is_followed_with_the_body_and_301_is_not() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, body = await read_request(reader)
        path = head.split(b" ")[1]
        if path == b"/old":
            writer.write(response("307 Temporary Redirect", b"", "Location: /new"))
        elif path == b"/gone":
            writer.write(response("301 Moved Permanently", b"", "Location: /new"))
        else:
            writer.write(response("200 OK", path + b" got " + body))
        await writer.drain()
        writer.close()

    async def run() -> list[tuple[int, bytes]]:
        server = await serving(handler)
        client = HTTP11Client()
        answers = [
            await post(client, url_of(server, "/old"), b"the body"),
            await post(client, url_of(server, "/gone"), b"the body"),
        ]
        await client.aclose()
        await server.stop()
        return answers

    assert asyncio.run(run()) == [(200, b"/new got the body"), (301, b"")]


def test_nothing_listening_is_a_connect_error() -> None:
    async def run() -> None:
        server = await serving(lambda r, w: asyncio.sleep(0))
        url = url_of(server)
        await server.stop()
        client = HTTP11Client()
        with pytest.raises(ConnectError, match=r"cannot connect to 127\.0\.0\.1"):
            await post(client, url)

    asyncio.run(run())


def test_a_silent_server_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http11, "READ_S", 0.3)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def run() -> None:
        server = await serving(handler)
        client = HTTP11Client()
        try:
            with pytest.raises(Timeout):
                await post(client, url_of(server))
        finally:
            await client.aclose()
            await server.stop()

    asyncio.run(run())


def test_https_with_the_host_name_checked() -> None:
    """TLS with SNI and the certificate checked against the host name: a certificate for
    another name is refused (a ConnectError), one for this name serves."""
    ca = trustme.CA()
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _, body = await read_request(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        writer.write(response("200 OK", b"secret " + body))
        await writer.drain()
        writer.close()

    async def run(cert_for: str) -> tuple[int, bytes]:
        served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(cert_for).configure_cert(served)
        server = await serving(handler, served)
        client = HTTP11Client(trusting)
        try:
            return await post(client, url_of(server, scheme="https"), b"ok")
        finally:
            await client.aclose()
            await server.stop()

    assert asyncio.run(run("127.0.0.1")) == (200, b"secret ok")
    with pytest.raises(ConnectError, match="certificate"):
        asyncio.run(run("someone-else.example"))


def test_the_adapter_streams_through_it_and_reports_a_dropped_stream() -> None:
    """`AnthropicModel` over this client: an answer in chunked SSE, then a stream cut in the
    middle (retried, then given up: the retry notices say why)."""
    cut = {"on": False}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            writer.write((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
            half = len(SSE_OK) // 2
            for part in (SSE_OK[:half], SSE_OK[half:]):
                writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                await writer.drain()
                if cut["on"]:
                    writer.close()
                    return
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    notices: list[Any] = []

    async def run() -> tuple[str, str]:
        server = await serving(handler)
        base = url_of(server, path="").geturl()
        model = AnthropicModel(
            "c",
            api_key="k",
            base_url=base,
            retry=RetryPolicy(max_retries=1, initial_delay=0.0, max_delay=0.0),
            on_retry=notices.append,
        )
        request = ModelRequest(system="s", messages=[])
        first = await model.complete(request)
        cut["on"] = True
        try:
            await model.complete(request)
        except Exception as e:
            second = str(e)
        await server.stop()
        return first.message.text, second

    text, failure = asyncio.run(run())
    assert text == "hello"
    assert "gave up" in failure and "connection dropped" in failure
    assert [n.reason for n in notices] == ["connection dropped"]


def test_a_proxy_in_the_environment_sends_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    """With `HTTP_PROXY` set the request goes to the proxy (here the fake provider, which reads
    the absolute URL's path), not to the base URL's host, which does not even resolve."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    script = Script.model_validate({"turns": [{"text": "through the proxy"}]})
    request = ModelRequest(system="s", messages=[Message.user("hi")])
    nowhere = "http://covey-proxy-test.invalid"
    model = AnthropicModel("c", api_key="k", base_url=nowhere, retry=RetryPolicy(max_retries=0))
    with pytest.raises(ModelError, match="connection error"):
        asyncio.run(model.complete(request))
    with FakeServer(script) as srv:
        monkeypatch.setenv("HTTP_PROXY", srv.url)
        reply = asyncio.run(model.complete(request))
        assert reply.message.text == "through the proxy"
        assert srv.requests[0]["path"] == "/v1/messages"
