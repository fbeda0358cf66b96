"""HTTP transports: ``HttpWire`` over an ``httpx.Client`` (sync) or ``AsyncClient``.

One client per connection keeps its TCP (and TLS) connections alive between calls;
``keepalive_expiry`` stays well below common server keep-alive timeouts so a request
rarely lands on a connection the server is closing. httpx failures become
``WireError``s: a connection that could not be established (refused, DNS, TLS
handshake, pool timeout) is marked "not executed, retryable"; anything after the
request may have been written is "maybe executed", never retried.
"""

from __future__ import annotations

import dataclasses
import ssl
from typing import Final

import httpx

from edgelite.client.exchange import Executed, Pipeline, Reply, WireError
from edgelite.client.target import RemoteTarget
from edgelite.client.wire_http import HttpWire

__all__ = [
    "READ_TIMEOUT_S_DEFAULT",
    "AsyncHttpTransport",
    "HttpTransport",
    "TransportOptions",
    "wire_error_from_httpx",
]

_KEEPALIVE_EXPIRY_S: Final = 5.0
CONNECT_TIMEOUT_S_DEFAULT: Final = 5.0
READ_TIMEOUT_S_DEFAULT: Final = 120.0


@dataclasses.dataclass(frozen=True, slots=True)
class TransportOptions:
    """``connect_timeout_s``: establishing a connection; ``read_timeout_s``: waiting for
    an answer; ``verify``: TLS verification (an ``SSLContext``, True, or
    False to disable); ``message_bytes_max``: largest WebSocket message accepted."""

    connect_timeout_s: float = CONNECT_TIMEOUT_S_DEFAULT
    read_timeout_s: float = READ_TIMEOUT_S_DEFAULT
    verify: ssl.SSLContext | bool = True
    message_bytes_max: int = 64 * 1024 * 1024

    def httpx_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s,
                             pool=self.connect_timeout_s)


def wire_error_from_httpx(exc: httpx.HTTPError, url: str) -> WireError:
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return WireError(f"timed out connecting to {url}", code="CONNECT_TIMEOUT",
                         executed=Executed.NO, retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return WireError(f"cannot connect to {url}: {exc}", code="CONNECT_ERROR",
                         executed=Executed.NO, retryable=True)
    if isinstance(exc, httpx.TimeoutException):
        return WireError(f"no answer from {url} in time ({type(exc).__name__})",
                         code="TIMEOUT", executed=Executed.MAYBE)
    return WireError(f"the connection to {url} failed: {type(exc).__name__}: {exc}",
                     code="CONNECTION_LOST", executed=Executed.MAYBE)


def _limits() -> httpx.Limits:
    return httpx.Limits(max_connections=4, max_keepalive_connections=2,
                        keepalive_expiry=_KEEPALIVE_EXPIRY_S)


class HttpTransport:
    """Blocking transport; one per connection, used by one thread at a time."""

    def __init__(self, target: RemoteTarget, options: TransportOptions) -> None:
        self.wire = HttpWire(target.base_url, auth_token=target.auth_token,
                             namespace=target.namespace,
                             max_staleness_ms=target.max_staleness_ms)
        self._client = httpx.Client(timeout=options.httpx_timeout(), verify=options.verify,
                                    limits=_limits(), follow_redirects=False)

    def exchange(self, pipeline: Pipeline) -> Reply:
        url, headers, body = self.wire.request(pipeline)
        try:
            response = self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise wire_error_from_httpx(exc, url) from exc
        return self.wire.reply(response.status_code, response.headers, response.content)

    def close(self) -> None:
        self._client.close()


class AsyncHttpTransport:
    """asyncio transport; one per connection."""

    def __init__(self, target: RemoteTarget, options: TransportOptions) -> None:
        self.wire = HttpWire(target.base_url, auth_token=target.auth_token,
                             namespace=target.namespace,
                             max_staleness_ms=target.max_staleness_ms)
        self._client = httpx.AsyncClient(timeout=options.httpx_timeout(),
                                         verify=options.verify, limits=_limits(),
                                         follow_redirects=False)

    async def exchange(self, pipeline: Pipeline) -> Reply:
        url, headers, body = self.wire.request(pipeline)
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise wire_error_from_httpx(exc, url) from exc
        return self.wire.reply(response.status_code, response.headers, response.content)

    async def aclose(self) -> None:
        await self._client.aclose()
