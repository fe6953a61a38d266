"""The HTTP clients (connection pools) the adapters send through: a few per event loop, made
on first use, shared by every model of that loop, closed when the loop shuts down.

A client is covey's `_http11.HTTP11Client`, or an `httpx2.AsyncClient` when the environment
names a proxy (`_proxied`). A client per request cost a TCP connection (and its set-up in the
event loop) per turn. One httpx client for the whole loop cost more: httpx's pool looks at
every one of its connections each time a request starts or ends, so with a hundred sessions
in step the supervisor spent 3.1 ms of CPU a request against 2.2 ms with a client per
request. So each model instance (a session's, a subagent's, a teammate's) keeps to one of
`POOLS` clients, round robin: its next request finds its kept-alive connection, and a client
holds a few connections, not hundreds (`HTTP11Client` keeps idle ones in a list per origin,
so it would not mind either way).

A client's connections belong to the loop that opened them, so each loop has its own clients;
`asyncio.run` (every covey entry point, Textual's too) closes a loop's async generators before
closing the loop, and a suspended generator here is what closes them. A loop closed without
`shutdown_asyncgens` keeps its clients open until the process ends.

    http = await loop_http(self._pool)        # self._pool = pool_number(), once per model
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncGenerator
from typing import Any

from covey.models._http11 import HTTP11Client

__all__ = ["POOLS", "PROXY_VARIABLES", "loop_http", "new_http", "pool_number", "proxied"]

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
"""Any of them set (any case): requests go through `httpx2`, which applies them and
`NO_PROXY` (`_proxied`)."""

POOLS = 32
"""Clients per event loop; a model instance keeps to one."""

_numbers = itertools.count()
_LOOP_CLIENTS: dict[asyncio.AbstractEventLoop, dict[int, Any]] = {}
_CLOSERS: dict[asyncio.AbstractEventLoop, AsyncGenerator[None]] = {}


def new_http() -> Any:
    """A new client: covey's own, or httpx's when a proxy is set (the TLS context, the
    costly part, is made once per process and shared)."""
    if not proxied():
        return HTTP11Client()
    from covey.models._proxied import new_httpx

    return new_httpx()


def proxied() -> bool:
    """Whether the environment names a proxy."""
    return any(os.environ.get(v) or os.environ.get(v.upper()) for v in PROXY_VARIABLES)


def pool_number() -> int:
    """The client a new model instance keeps to (round robin over `POOLS`)."""
    return next(_numbers) % POOLS


async def loop_http(pool: int = 0) -> Any:
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
    loop: asyncio.AbstractEventLoop, clients: dict[int, Any]
) -> AsyncGenerator[None]:
    try:
        yield
    finally:
        _LOOP_CLIENTS.pop(loop, None)
        _CLOSERS.pop(loop, None)
        for client in clients.values():
            await client.aclose()
