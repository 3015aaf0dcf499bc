"""Bounded GET requests for the key set, the discovery document and the revocation feed.

Every fetch has a total deadline, follows no redirect (a 3xx is an error, so the
issuer's keys cannot be moved to another host by one response), refuses compressed
bodies (a small gzip body can inflate to gigabytes before a size check sees it) and
stops reading past a size limit. Failures become ``FetchFailed`` with a short reason
that names the problem, never the body.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

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
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{what} must be an absolute http(s) URL"
    if parts.username is not None or parts.password is not None:
        return f"{what} must not carry credentials"
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(parts.hostname):
        return f"{what} must use https (http is accepted only on loopback or when allowed)"
    return None


def _reason(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return f"request failed ({type(exc).__name__})"


def _check_head(response: httpx.Response, max_bytes: int) -> None:
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchFailed("compressed response refused")
    length = response.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
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
    deadline = time.monotonic() + timeout
    try:
        with client.stream(
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
            body = _Body(max_bytes, deadline)
            # No content-encoding (checked above): these are the bytes as sent.
            chunks: Iterator[bytes] = response.iter_bytes()
            for chunk in chunks:
                body.add(chunk)
            return Fetched(200, response.headers, body.bytes())
    except httpx.HTTPError as exc:
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
    deadline = time.monotonic() + timeout
    try:
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
            body = _Body(max_bytes, deadline)
            chunks: AsyncIterator[bytes] = response.aiter_bytes()
            async for chunk in chunks:
                body.add(chunk)
            return Fetched(200, response.headers, body.bytes())
    except httpx.HTTPError as exc:
        raise FetchFailed(_reason(exc)) from None
