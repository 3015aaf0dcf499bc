"""The log names trusted_proxies when throttled requests came through an unlisted proxy."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from tokensmith.clock import FixedClock
from tokensmith.server.proxy_hint import ProxyHint
from tokensmith.server.settings import Settings

from .conftest import Server, basic, running

pytestmark = pytest.mark.anyio

PROXY = "10.1.2.3"
FORWARDED = "198.51.100.77"
WRONG = {"grant_type": "password", "username": "alice", "password": "wrong"}


async def _throttle(server: Server, headers: dict[str, str]) -> None:
    """Fail logins until the server answers 429, then once more."""
    await server.add_user()
    client = await server.add_client()
    assert client.secret is not None
    auth = {**basic("web", client.secret), **headers}
    statuses = [
        (await server.http.post("/oauth/token", data=WRONG, headers=auth)).status_code
        for _ in range(3)
    ]
    assert statuses == [400, 429, 429]


def _hints(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]


@pytest.mark.parametrize(
    ("settings", "headers", "expected"),
    [
        ({}, {"X-Forwarded-For": FORWARDED}, 1),  # once, though throttled twice
        ({}, {}, 0),  # no sign of a proxy
        ({"trusted_proxies": (PROXY,)}, {"X-Forwarded-For": FORWARDED}, 0),  # configured
    ],
)
async def test_a_throttled_request_through_an_unlisted_proxy_is_named_once(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    settings: dict[str, Any],
    headers: dict[str, str],
    expected: int,
) -> None:
    caplog.set_level(logging.WARNING, logger="tokensmith.server")
    async with running(tmp_path, address=PROXY, login_free_failures=0, **settings) as server:
        await _throttle(server, headers)
    hints = _hints(caplog)
    assert len(hints) == expected
    for hint in hints:
        assert PROXY in hint and "TOKENSMITH_TRUSTED_PROXIES" in hint
        assert FORWARDED not in hint  # the client's own header text is never logged


def _request(address: str) -> Request:
    headers = [(b"x-forwarded-for", FORWARDED.encode())]
    return Request({"type": "http", "method": "POST", "headers": headers, "client": (address, 1)})


def test_a_flood_of_addresses_never_silences_the_hint_and_it_repeats_hourly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tokensmith.server")
    clock = FixedClock(1_750_000_000)
    hint = ProxyHint(Settings(data_dir=tmp_path), clock)
    for i in range(200):  # a client throttled from many addresses, header set
        hint.throttled(_request(f"2001:db8::{i:x}"))
    hint.throttled(_request(PROXY))
    hint.throttled(_request(PROXY))  # named once within the hour
    assert sum(PROXY in message for message in _hints(caplog)) == 1
    clock.advance(3600)
    hint.throttled(_request(PROXY))
    assert sum(PROXY in message for message in _hints(caplog)) == 2
