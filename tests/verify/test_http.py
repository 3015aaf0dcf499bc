"""Bounded fetches: size, deadline, encoding, redirects, URL safety."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from tokensmith.verify._http import FetchFailed, _Body, check_url, get_limited, get_limited_async

pytestmark = pytest.mark.anyio


def client(handler: httpx.MockTransport) -> httpx.Client:
    return httpx.Client(transport=handler)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://auth.example.test", None),
        ("http://127.0.0.1:8000", None),
        ("http://127.8.9.10", None),
        ("http://localhost:8000/x", None),
        ("http://[::1]:8000", None),
        ("http://auth.example.test", "https"),
        ("http://10.0.0.1", "https"),
        ("auth.example.test", "absolute"),
        ("file:///etc/passwd", "absolute"),
        ("https://user:pw@auth.example.test", "credentials"),
        ("", "non-empty"),
        ("http://[::1/jwks", "not a valid URL"),
        ("https://a.test:99999/", "not a valid URL"),
        ("https://a.test:x/", "not a valid URL"),
        ("https://a.test/jw\x00ks", "control characters"),
        ("https://a.test/a b", "spaces"),
        ("https://a.test/\x7f", "control characters"),
    ],
)
def test_check_url(url: str, problem: str | None) -> None:
    found = check_url(url, what="url", allow_insecure_http=False)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_check_url_allows_http_when_told() -> None:
    assert check_url("http://auth.internal", what="u", allow_insecure_http=True) is None


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * 5000)

    with pytest.raises(FetchFailed, match="larger than 4096"):
        get_limited(
            client(httpx.MockTransport(handler)), "https://a.test/", timeout=1, max_bytes=4096
        )


def test_a_streamed_body_over_the_limit_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter([b"x" * 3000, b"y" * 3000]))  # no length

    with pytest.raises(FetchFailed, match="larger than 4096"):
        get_limited(
            client(httpx.MockTransport(handler)), "https://a.test/", timeout=1, max_bytes=4096
        )


def test_a_body_is_read_only_for_a_200() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, content=b"x" * 100_000)

    fetched = get_limited(
        client(httpx.MockTransport(handler)), "https://a.test/", timeout=1, max_bytes=4096
    )
    assert fetched.status == 500 and fetched.body == b""


def test_a_redirect_is_returned_not_followed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(301, headers={"Location": "https://elsewhere.test/"})

    fetched = get_limited(
        client(httpx.MockTransport(handler)), "https://a.test/", timeout=1, max_bytes=4096
    )
    assert fetched.status == 301 and seen == ["https://a.test/"]


def test_a_body_past_its_deadline_is_refused() -> None:
    body = _Body(1000, time.monotonic() - 1)
    with pytest.raises(FetchFailed, match="timed out"):
        body.add(b"x")


def test_a_body_within_limits_is_joined() -> None:
    body = _Body(10, time.monotonic() + 60)
    body.add(b"abc")
    body.add(b"defg")
    assert body.bytes() == b"abcdefg"


def test_transport_errors_become_short_reasons() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused to a.test with secret details")

    with pytest.raises(FetchFailed) as info:
        get_limited(
            client(httpx.MockTransport(handler)), "https://a.test/", timeout=1, max_bytes=4096
        )
    assert info.value.reason == "request failed (ConnectError)"


class Stop(BaseException):
    """Stands for cancellation or KeyboardInterrupt: never turned into a failed fetch."""


TRANSPORT_ERRORS = [
    (httpx.InvalidURL("bad"), "request failed (InvalidURL)"),
    (httpx.StreamConsumed(), "request failed (StreamConsumed)"),
    (ValueError("Invalid IPv6 URL"), "request failed (ValueError)"),
    (OSError("unreachable"), "request failed (OSError)"),
    (TimeoutError(), "timed out"),
    (ExceptionGroup("connect", [OSError("refused")]), "request failed (OSError)"),
    (ExceptionGroup("connect", [OverflowError("port")]), "request failed (OverflowError)"),
]


@pytest.mark.parametrize(("error", "reason"), TRANSPORT_ERRORS)
def test_every_transport_error_is_a_failed_fetch(error: Exception, reason: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(FetchFailed) as info:
        get_limited(client(httpx.MockTransport(handler)), "https://a.test/", timeout=1, max_bytes=9)
    assert info.value.reason == reason


@pytest.mark.parametrize(("error", "reason"), TRANSPORT_ERRORS)
async def test_every_transport_error_is_a_failed_fetch_async(error: Exception, reason: str) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(FetchFailed) as info:
            await get_limited_async(http, "https://a.test/", timeout=1, max_bytes=9)
    assert info.value.reason == reason


@pytest.mark.parametrize("error", [Stop(), BaseExceptionGroup("g", [Stop()])])
async def test_cancellation_and_base_exceptions_pass_through(error: BaseException) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises((Stop, BaseExceptionGroup)):
        get_limited(client(httpx.MockTransport(handler)), "https://a.test/", timeout=1, max_bytes=9)

    async def async_handler(request: httpx.Request) -> httpx.Response:
        raise error

    async with httpx.AsyncClient(transport=httpx.MockTransport(async_handler)) as http:
        with pytest.raises((Stop, BaseExceptionGroup)):
            await get_limited_async(http, "https://a.test/", timeout=1, max_bytes=9)


async def test_an_async_fetch_cancelled_from_outside_is_cancelled() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        raise AssertionError("not reached")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        task = asyncio.ensure_future(
            get_limited_async(http, "https://a.test/", timeout=5, max_bytes=9)
        )
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_an_async_fetch_is_bounded_as_a_whole() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)  # a transport that never answers and never times out
        raise AssertionError("not reached")

    started = time.monotonic()
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        with pytest.raises(FetchFailed, match="timed out"):
            await get_limited_async(http, "https://a.test/", timeout=0.2, max_bytes=9)
    assert time.monotonic() - started < 2


def test_a_non_ascii_content_length_is_not_a_crash() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=[(b"Content-Length", "\u00b2".encode())], content=b"x")

    try:
        get_limited(
            client(httpx.MockTransport(handler)), "https://a.test/", timeout=1, max_bytes=1024
        )
    except FetchFailed:
        pass
