"""Bounded GET requests for the key set, the discovery document and the revocation feed.

Every fetch has a total deadline, follows no redirect (a 3xx is an error, so the
issuer's keys cannot be moved to another host by one response), refuses compressed
bodies (a small gzip body can inflate to gigabytes before a size check sees it) and
stops reading past a size limit. Failures become ``FetchFailed`` with a short reason
that names the problem, never the body.

The deadline covers the whole request (connect, headers, body): the async side runs
it under ``asyncio.timeout``, the sync side bounds every socket operation by the
time left (``_deadline``). Whatever the transport raises for a URL or the network
(httpx errors, ``OSError``, ``ValueError``, anyio's exception groups) is a failed
fetch too; cancellation and other ``BaseException`` pass through untouched.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ._deadline import deadline, enforce_deadlines

__all__ = ["FetchFailed", "Fetched", "check_url", "get_limited", "get_limited_async"]

_REQUEST_HEADERS = {"Accept-Encoding": "identity", "User-Agent": "tokensmith-verify"}
_LOOPBACK_NAMES = frozenset({"localhost"})


class FetchFailed(Exception):
    """A fetch did not produce a usable answer; ``reason`` is short and safe to log."""

    def __init__(self, reason: str) -> None:
        self.reason = reason[:200]
        super().__init__(self.reason)


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response: its status, headers and, for a 200, its whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, *, what: str, allow_insecure_http: bool) -> str | None:
    """Why ``url`` may not be fetched (None when it may).

    Keys and revocations fetched over plain HTTP can be replaced by anyone on the
    path, so only https is accepted, except on the loopback interface or when the
    caller opts in.
    """
    if type(url) is not str or not url:
        return f"{what} must be a non-empty URL"
    # Control characters and spaces are never valid in a URL; httpx would raise
    # InvalidURL on them at request time.
    if any(char <= " " or char == "\x7f" for char in url):
        return f"{what} must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        hostname, _ = parts.hostname, parts.port  # both parse lazily and raise ValueError
    except ValueError:
        return f"{what} is not a valid URL"
    if parts.scheme not in ("https", "http") or not hostname:
        return f"{what} must be an absolute http(s) URL"
    if parts.username is not None or parts.password is not None:
        return f"{what} must not carry credentials"
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(hostname):
        return f"{what} must use https (http is accepted only on loopback or when allowed)"
    return None


#: What a transport may raise for a bad URL or a failed network exchange.
#: ``ExceptionGroup`` holds only ``Exception``s (a group with a cancellation in it is
#: a ``BaseExceptionGroup`` and is not caught): anyio's connect raises one.
_TRANSPORT_ERRORS = (
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.StreamError,
    ValueError,
    OSError,
    ExceptionGroup,
)


def _reason(exc: Exception) -> str:
    while isinstance(exc, ExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timed out"
    return f"request failed ({type(exc).__name__})"


def _check_head(response: httpx.Response, max_bytes: int) -> None:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchFailed("compressed response refused")
    length = response.headers.get("content-length")
    if length is not None and length.isascii() and length.isdigit() and int(length) > max_bytes:
        raise FetchFailed(f"response larger than {max_bytes} bytes")


class _Body:
    """Collects chunks up to ``max_bytes`` before ``deadline`` (time.monotonic)."""

    def __init__(self, max_bytes: int, deadline: float) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._max = max_bytes
        self._deadline = deadline

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._max:
            raise FetchFailed(f"response larger than {self._max} bytes")
        # Each read has its own timeout; this bounds a server that drips bytes.
        if time.monotonic() > self._deadline:
            raise FetchFailed("timed out")
        self._chunks.append(chunk)

    def bytes(self) -> bytes:
        return b"".join(self._chunks)


def _headers(extra: Mapping[str, str] | None) -> dict[str, str]:
    return {**_REQUEST_HEADERS, **extra} if extra else dict(_REQUEST_HEADERS)


# The deadline is wall time on the monotonic clock, not the injected Clock: it bounds
# real I/O, and a test's fixed clock would never let it pass.


def get_limited(
    client: httpx.Client,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
) -> Fetched:
    """GET ``url``; the body is read only for a 200. Raises ``FetchFailed``."""
    end = time.monotonic() + timeout
    enforce_deadlines(client)
    try:
        with (
            deadline(end),
            client.stream(
                "GET",
                url,
                headers=_headers(headers),
                params=params,
                auth=auth,
                timeout=timeout,
                follow_redirects=False,
            ) as response,
        ):
            if response.status_code != 200:
                return Fetched(response.status_code, response.headers, b"")
            _check_head(response, max_bytes)
            body = _Body(max_bytes, end)
            # No content-encoding (checked above): these are the bytes as sent.
            chunks: Iterator[bytes] = response.iter_bytes()
            for chunk in chunks:
                body.add(chunk)
            return Fetched(200, response.headers, body.bytes())
    except _TRANSPORT_ERRORS as exc:
        raise FetchFailed(_reason(exc)) from None


async def get_limited_async(
    client: httpx.AsyncClient,
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
    auth: httpx.Auth | None = None,
) -> Fetched:
    """The async twin of ``get_limited``."""
    end = time.monotonic() + timeout
    try:
        # The timeout scope cancels the request wherever it waits (connect, a
        # dripped header, the body) and turns only its own cancellation into
        # TimeoutError; a cancellation from outside propagates as it came.
        async with asyncio.timeout(timeout):
            async with client.stream(
                "GET",
                url,
                headers=_headers(headers),
                params=params,
                auth=auth,
                timeout=timeout,
                follow_redirects=False,
            ) as response:
                if response.status_code != 200:
                    return Fetched(response.status_code, response.headers, b"")
                _check_head(response, max_bytes)
                body = _Body(max_bytes, end)
                chunks: AsyncIterator[bytes] = response.aiter_bytes()
                async for chunk in chunks:
                    body.add(chunk)
                return Fetched(200, response.headers, body.bytes())
    except _TRANSPORT_ERRORS as exc:
        raise FetchFailed(_reason(exc)) from None
