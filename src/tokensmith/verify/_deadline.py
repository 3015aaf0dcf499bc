"""A total deadline for sync requests, enforced at the socket.

httpx's sync timeouts are per operation: a server that sends one header byte per
second never trips a 5 s read timeout, and the body-size/deadline checks in
``_http`` only start once the headers are complete. So every read, write and
connect of a pooled connection is given ``min(its timeout, time left)``, and fails
as a timeout once the deadline has passed.

The deadline travels in a context variable set by ``get_limited`` for the duration
of one request: connections are pooled and shared, a deadline is per request. With
no deadline set (the same client used for something else) the streams behave as
before. No thread is involved. The async side needs none of this: a cancel scope
(``asyncio.timeout``) bounds the whole request there.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpcore
import httpx

__all__ = ["deadline", "enforce_deadlines"]

_DEADLINE: ContextVar[float | None] = ContextVar("tokensmith_verify_deadline", default=None)

_SocketOptions = Iterable[Any] | None


def _bounded(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    end = _DEADLINE.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise expired("the request's total deadline passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._stream.start_tls(
            ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)
        )
        return _DeadlineStream(stream)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: _SocketOptions = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _bounded(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: _SocketOptions = None
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(
            path, _bounded(timeout, httpcore.ConnectTimeout), socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


def _wrap(transport: object) -> None:
    # httpx offers no public hook for the network backend of an HTTPTransport; its
    # pool (httpcore.ConnectionPool, or a proxy pool deriving from it) keeps it in
    # ``_network_backend`` and hands it to every new connection. Anything else (a
    # MockTransport, a custom transport) is left alone: the body deadline in
    # ``_http`` still applies there.
    if not isinstance(transport, httpx.HTTPTransport):
        return
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _DeadlineBackend):
        pool._network_backend = _DeadlineBackend(backend)  # type: ignore[union-attr]


def enforce_deadlines(client: httpx.Client) -> None:
    """Make the client's HTTP transports honour ``deadline``; idempotent and cheap."""
    _wrap(getattr(client, "_transport", None))
    for transport in getattr(client, "_mounts", {}).values():
        _wrap(transport)


@contextmanager
def deadline(end: float) -> Iterator[None]:
    """Requests made inside must finish before ``end`` (``time.monotonic``)."""
    token = _DEADLINE.set(end)
    try:
        yield
    finally:
        _DEADLINE.reset(token)
