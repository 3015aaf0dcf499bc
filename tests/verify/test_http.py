"""Bounded fetches: size, deadline, encoding, redirects, URL safety."""

from __future__ import annotations

import time

import httpx
import pytest

from tokensmith.verify._http import FetchFailed, _Body, check_url, get_limited

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
