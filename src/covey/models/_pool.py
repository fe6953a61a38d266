"""The HTTP clients (connection pools) the adapters send through: a few per event loop, made
on first use, shared by every model of that loop, closed when the loop shuts down.

A client per request cost a TCP connection (and its set-up in the event loop) per turn. One
client for the whole loop cost more: httpx's pool looks at every one of its connections each
time a request starts or ends, and probes each idle one's socket, so with a hundred sessions
in step the supervisor spent 3.1 ms of CPU a request against 2.2 ms with a client per request.
So each model instance (a session's, a subagent's, a teammate's) keeps to one of `POOLS`
clients, round robin: its next request finds its kept-alive connection, and a client holds a
few connections, not hundreds.

A client's connections belong to the loop that opened them, so each loop has its own clients;
`asyncio.run` (every covey entry point, Textual's too) closes a loop's async generators before
closing the loop, and a suspended generator here is what closes them. A loop closed without
`shutdown_asyncgens` keeps its clients open until the process ends.

    http = await loop_http(self._pool)        # self._pool = pool_number(), once per model
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncGenerator

import httpx2

from covey.models._http import ssl_context

__all__ = ["LIMITS", "POOLS", "TIMEOUT", "loop_http", "new_http", "pool_number"]

TIMEOUT = httpx2.Timeout(600.0, connect=5.0)
"""The SDKs' defaults: 10 minutes to read (a long stream is many reads), 5 s to connect."""
LIMITS = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
"""No cap: streams at once must not wait for each other (httpx's default is 100, 20 kept
alive); an idle connection is closed after httpx's 5 s."""
POOLS = 32
"""Clients per event loop; a model instance keeps to one."""

_numbers = itertools.count()
_LOOP_CLIENTS: dict[asyncio.AbstractEventLoop, dict[int, httpx2.AsyncClient]] = {}
_CLOSERS: dict[asyncio.AbstractEventLoop, AsyncGenerator[None]] = {}


def new_http() -> httpx2.AsyncClient:
    """A new client; the TLS context, the costly part, is shared by all of them."""
    return httpx2.AsyncClient(
        verify=ssl_context(), timeout=TIMEOUT, follow_redirects=True, limits=LIMITS
    )


def pool_number() -> int:
    """The client a new model instance keeps to (round robin over `POOLS`)."""
    return next(_numbers) % POOLS


async def loop_http(pool: int = 0) -> httpx2.AsyncClient:
    """Client number `pool` of the running event loop, made on first use."""
    loop = asyncio.get_running_loop()
    clients = _LOOP_CLIENTS.get(loop)
    if clients is None:
        clients = _LOOP_CLIENTS[loop] = {}
        closer = _CLOSERS[loop] = _closed_at_shutdown(loop, clients)
        await closer.asend(None)  # its first step: the loop now knows it, and closes it last
    client = clients.get(pool)
    if client is None:
        client = clients[pool] = new_http()
    return client


async def _closed_at_shutdown(
    loop: asyncio.AbstractEventLoop, clients: dict[int, httpx2.AsyncClient]
) -> AsyncGenerator[None]:
    try:
        yield
    finally:
        _LOOP_CLIENTS.pop(loop, None)
        _CLOSERS.pop(loop, None)
        for client in clients.values():
            await client.aclose()
