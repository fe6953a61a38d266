"""The `httpx2` path of the provider client, for what `_http11` does not do: a proxy set in
the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, any case; httpx applies them and
`NO_PROXY`). Tests also hand the adapters an `httpx2.AsyncClient` on a `MockTransport` to
serve odd responses. Imported only then (`httpx2` costs ~0.1 s to import).

`open_httpx_stream` gives a response with `_http11.Response`'s face, and httpx's failures
become `_http11`'s (`Timeout`, `ConnectionDropped`, `ConnectError`), so the adapters read one
kind of response and catch one kind of error.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from urllib.parse import SplitResult

import httpx2

from covey.models._http import ssl_context
from covey.models._http11 import ConnectError, ConnectionDropped, HTTPFailure, Timeout

__all__ = ["HttpxResponse", "failure", "new_httpx", "open_httpx_stream"]

TIMEOUT = httpx2.Timeout(600.0, connect=5.0)
"""The SDKs' defaults: 10 minutes to read (a long stream is many reads), 5 s to connect."""
LIMITS = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
"""No cap: streams at once must not wait for each other (httpx's default is 100, 20 kept
alive); an idle connection is closed after httpx's 5 s."""


def new_httpx() -> httpx2.AsyncClient:
    """A client that honours the environment's proxies; the TLS context is shared."""
    return httpx2.AsyncClient(
        verify=ssl_context(), timeout=TIMEOUT, follow_redirects=True, limits=LIMITS
    )


def failure(exc: httpx2.HTTPError) -> HTTPFailure:
    """httpx's exception as `_http11`'s."""
    if isinstance(exc, httpx2.TimeoutException):
        return Timeout(str(exc))
    if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
        return ConnectionDropped(str(exc))
    detail = str(exc)
    return ConnectError(f"{type(exc).__name__}{': ' + detail if detail else ''}")


class HttpxResponse:
    """An `httpx2.Response` read as `_http11.Response` is."""

    def __init__(self, response: httpx2.Response) -> None:
        self._response = response
        self.status_code = response.status_code
        self.headers: Mapping[str, str] = response.headers

    @property
    def is_error(self) -> bool:
        return self._response.is_error

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx2.HTTPError as e:
            raise failure(e) from e

    async def aread(self) -> bytes:
        try:
            return await self._response.aread()
        except httpx2.HTTPError as e:
            raise failure(e) from e

    @property
    def text(self) -> str:
        return self._response.text


@contextlib.asynccontextmanager
async def open_httpx_stream(
    http: httpx2.AsyncClient, url: SplitResult, body: bytes, headers: Mapping[str, str]
) -> AsyncIterator[HttpxResponse]:
    request = http.build_request("POST", url.geturl(), content=body, headers=headers)
    try:
        response = await http.send(request, stream=True)
    except httpx2.HTTPError as e:
        raise failure(e) from e
    try:
        yield HttpxResponse(response)
    finally:
        await response.aclose()
