"""The log names trusted_proxies when throttled requests came through an unlisted proxy."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

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
