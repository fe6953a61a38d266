"""covey's HTTP/1.1 client: one streaming POST at a time per connection, kept alive between
requests, over asyncio's transports, framed by `h11` (the HTTP/1.1 state machine httpx uses
underneath; covey parses no HTTP itself).

Why not `httpx2` on the hot path: a streamed request through httpx's client, transport,
connection pool and anyio layers cost ~1.5 ms of CPU against ~0.3 ms here (`bench/adapter.py`),
and a supervisor hosting a hundred sessions makes a hundred requests every second on one event
loop. `httpx2` stays for what this client does not do, proxies (`HTTP(S)_PROXY`, `ALL_PROXY`
in the environment: `covey.models._pool.new_http` then picks it), and it is imported only then.

What it does: `http`/`https` (TLS with `_http.ssl_context`, SNI and hostname checked), a
`Host` and `Content-Length` set here, redirects 307/308 followed (the POST repeated, at most
`MAX_REDIRECTS`; other 3xx are answered as they are, an error for the adapters), idle
connections kept `KEEPALIVE_S` (httpx's default) and never reused once the server closed
them or the response was not read to its end. Timeouts as the SDKs': `CONNECT_S` to connect,
`READ_S` for each read. Failures are `HTTPFailure`s: `ConnectError`, `Timeout`,
`ConnectionDropped` (closed or reset before the response ended, or a malformed response).

    async with client.post(url, body, headers) as response:   # url: urlsplit(...)
        response.status_code, response.headers                 # headers: lower-case keys
        async for chunk in response.aiter_bytes(): ...          # or: await response.aread()
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from urllib.parse import SplitResult, urljoin, urlsplit

import h11

__all__ = [
    "CONNECT_S",
    "KEEPALIVE_S",
    "READ_S",
    "ConnectError",
    "ConnectionDropped",
    "HTTP11Client",
    "HTTPFailure",
    "Response",
    "Timeout",
]

CONNECT_S = 5.0
READ_S = 600.0
"""The SDKs' defaults: 5 s to connect, 10 minutes for each read of a stream."""
KEEPALIVE_S = 5.0
"""An idle connection older than this is closed, not reused (servers drop idle ones)."""
MAX_REDIRECTS = 5
_SET_HERE = frozenset({"host", "content-length", "transfer-encoding"})


class HTTPFailure(Exception):
    """A request that got no whole response."""


class ConnectError(HTTPFailure):
    """The connection could not be made (refused, unknown host, TLS handshake failed)."""


class Timeout(HTTPFailure):
    """Connecting, or a read, took longer than allowed."""


class ConnectionDropped(HTTPFailure):
    """The connection was closed or reset before the response ended, or the response was not
    HTTP/1.1 as `h11` reads it."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection: the bytes it receives go to its `h11` state machine."""

    def __init__(self, origin: tuple[str, str, int]) -> None:
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.h11.receive_data(data)
        self._wake()

    def eof_received(self) -> bool:
        self._ended()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()

    def _ended(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(h11.RemoteProtocolError):
                self.h11.receive_data(b"")
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def reusable(self, now: float) -> bool:
        return (
            not self.closed
            and self.h11.our_state is h11.IDLE
            and now - self.idle_since < KEEPALIVE_S
            and self.transport is not None
            and not self.transport.is_closing()
        )

    def send(self, *events: h11.Event) -> None:
        assert self.transport is not None
        self.transport.write(b"".join(self.h11.send(e) or b"" for e in events))

    async def next_event(self) -> h11.Event:
        """The next event of the response; waits for bytes (each wait at most `READ_S`)."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as e:
                raise ConnectionDropped(f"malformed or cut response: {e}") from e
            if type(event) is h11.ConnectionClosed:
                raise ConnectionDropped("the server closed the connection")
            if event is h11.PAUSED:  # bytes after the response's end
                raise ConnectionDropped("the server sent more than one response")
            if event is not h11.NEED_DATA:
                assert isinstance(event, h11.Event)
                return event
            if self.closed:  # (h11 has had the end of the stream: it says what it makes of it)
                raise ConnectionDropped("the server closed the connection")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(READ_S):
                    await self._waiter
            except TimeoutError as e:
                raise Timeout(f"no data for {READ_S:g} s") from e
            finally:
                self._waiter = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """A response whose headers are in; its body is read with `aiter_bytes` or `aread`."""

    def __init__(self, conn: _Connection, head: h11.Response) -> None:
        self._conn = conn
        self.status_code: int = head.status_code
        headers: dict[str, str] = {}
        for name, value in head.headers:
            key, text = name.decode("latin-1"), value.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.headers: Mapping[str, str] = headers
        """Lower-case names; a repeated header's values joined with ", "."""
        self.complete = False
        """The body was read to its end (the connection can serve another request)."""
        self._content: bytes | None = None

    @property
    def is_error(self) -> bool:
        """Anything but 2xx: a redirect not followed is an answer the adapters cannot use."""
        return not 200 <= self.status_code < 300

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        while not self.complete:
            event = await self._conn.next_event()
            if type(event) is h11.Data:
                yield bytes(event.data)
            elif type(event) is h11.EndOfMessage:
                self.complete = True

    async def aread(self) -> bytes:
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.aiter_bytes()])
        return self._content

    @property
    def text(self) -> str:
        """The body read by `aread`, as UTF-8 (what the providers send)."""
        return (self._content or b"").decode("utf-8", "replace")


class HTTP11Client:
    """Kept-alive connections of one event loop, by origin (scheme, host, port)."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self.is_closed = False

    @contextlib.asynccontextmanager
    async def post(
        self, url: SplitResult, body: bytes, headers: Mapping[str, str]
    ) -> AsyncIterator[Response]:
        """POST `body` and yield the response once its headers are in (following 307/308)."""
        conn, response = await self._exchange(url, body, headers)
        for _ in range(MAX_REDIRECTS):
            location = response.headers.get("location")
            if response.status_code not in (307, 308) or not location:
                break
            await response.aread()
            self._done(conn, response)
            url = urlsplit(urljoin(url.geturl(), location))
            conn, response = await self._exchange(url, body, headers)
        try:
            yield response
        finally:
            self._done(conn, response)

    async def _exchange(
        self, url: SplitResult, body: bytes, headers: Mapping[str, str]
    ) -> tuple[_Connection, Response]:
        """Send the request and read the response's head. A kept-alive connection the server
        closed meanwhile (nothing came back) is replaced by a new one, once."""
        conn, reused = await self._connection(url)
        try:
            return conn, await self._send(conn, url, body, headers)
        except ConnectionDropped:
            if not reused:
                raise
        conn, _ = await self._connection(url, fresh=True)
        return conn, await self._send(conn, url, body, headers)

    async def _send(
        self, conn: _Connection, url: SplitResult, body: bytes, headers: Mapping[str, str]
    ) -> Response:
        try:
            target = (url.path or "/") + (f"?{url.query}" if url.query else "")
            head = [("host", url.netloc.rpartition("@")[2]), ("content-length", str(len(body)))]
            head += [(k, v) for k, v in headers.items() if k.lower() not in _SET_HERE]
            conn.send(
                h11.Request(method="POST", target=target, headers=head),
                h11.Data(data=body),
                h11.EndOfMessage(),
            )
            while True:
                event = await conn.next_event()
                if type(event) is h11.Response:
                    return Response(conn, event)
                # an InformationalResponse (100 Continue…): the real one follows
        except BaseException:
            conn.close()
            raise

    async def _connection(
        self, url: SplitResult, *, fresh: bool = False
    ) -> tuple[_Connection, bool]:
        """A kept-alive connection to the URL's origin (True), else a new one (False)."""
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConnectError(f"cannot send to {url.geturl()!r}: not an http(s) URL")
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = (url.scheme, url.hostname, port)
        idle, now = self._idle.get(origin), time.monotonic()
        while idle and not fresh:
            conn = idle.pop()
            if conn.reusable(now):
                return conn, True
            conn.close()
        tls = self._ssl if url.scheme == "https" else None
        if url.scheme == "https" and tls is None:
            from covey.models._http import ssl_context

            tls = self._ssl = ssl_context()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(CONNECT_S):
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin),
                    url.hostname,
                    port,
                    ssl=tls,
                    server_hostname=url.hostname if tls else None,
                )
        except TimeoutError as e:
            raise Timeout(f"connecting to {url.hostname}:{port} took over {CONNECT_S:g} s") from e
        except OSError as e:  # refused, unreachable, no such host, TLS (ssl.SSLError)
            raise ConnectError(f"cannot connect to {url.hostname}:{port}: {e}") from e
        return conn, False

    def _done(self, conn: _Connection, response: Response) -> None:
        """Back to the idle connections if the exchange ended cleanly, else closed."""
        if not response.complete or conn.closed or conn.h11.their_state is not h11.DONE:
            conn.close()
            return
        try:
            conn.h11.start_next_cycle()
        except h11.LocalProtocolError:  # e.g. `Connection: close`: not reusable
            conn.close()
            return
        conn.idle_since = time.monotonic()
        self._idle.setdefault(conn.origin, []).append(conn)

    async def aclose(self) -> None:
        self.is_closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
