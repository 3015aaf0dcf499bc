"""The revocation feed: pages followed by cursor, outages survived, real thread and task."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from typing import Any

import httpx
import pytest

from tokensmith.clock import FixedClock
from tokensmith.verify import Denylist
from tokensmith.verify._http import FetchFailed
from tokensmith.verify.revocations import (
    MAX_HORIZON,
    AsyncRevocationPoller,
    RevocationFeed,
    RevocationPoller,
    RevocationState,
    parse_feed_page,
)

from .conftest import CLIENT_ID, CLIENT_SECRET, FEED_URI, NOW, FakeIssuer

pytestmark = pytest.mark.anyio


def feed_for(clock: FixedClock, denylist: Denylist | None = None) -> RevocationFeed:
    denylist = denylist if denylist is not None else Denylist()  # an empty one is falsy
    return RevocationFeed(FEED_URI, CLIENT_ID, CLIENT_SECRET, denylist, clock)


def poller(fake: FakeIssuer, clock: FixedClock, interval: float = 5) -> RevocationPoller:
    return RevocationPoller(feed_for(clock), httpx.Client(transport=fake.transport()), interval)


def revoked(seq: int, exp: int = NOW + 900) -> tuple[int, str, dict[str, Any]]:
    return (seq, "revoked", {"jti": f"j{seq}", "exp": exp})


# -- pages ----------------------------------------------------------------------------------


def test_a_page_is_read() -> None:
    body = {
        "revoked": [{"jti": "a", "exp": 10}],
        "not_before": [{"sub": "42", "nbf": 5.5}],
        "next_cursor": 7,
    }
    page = parse_feed_page(json.dumps(body).encode())
    assert page.revoked == (("a", 10),) and page.not_before == (("42", 5.5),)
    assert page.next_cursor == 7 and not page.empty


@pytest.mark.parametrize(
    "body",
    [
        b"nope",
        b"[]",
        b'{"revoked": [], "not_before": []}',
        b'{"revoked": [], "not_before": [], "next_cursor": -1}',
        b'{"revoked": [], "not_before": [], "next_cursor": true}',
        b'{"revoked": {}, "not_before": [], "next_cursor": 1}',
        b'{"revoked": [{"jti": 5, "exp": 1}], "not_before": [], "next_cursor": 1}',
        b'{"revoked": [{"jti": "a", "exp": "1"}], "not_before": [], "next_cursor": 1}',
        b'{"revoked": [{"jti": "a", "exp": NaN}], "not_before": [], "next_cursor": 1}',
        b'{"revoked": [], "not_before": [{"sub": "a", "nbf": true}], "next_cursor": 1}',
        b'{"revoked": [{"jti": "a", "exp": 1e999}], "not_before": [], "next_cursor": 1}',
        b'{"revoked": [{"jti": "", "exp": 1}], "not_before": [], "next_cursor": 1}',
        b'{"revoked": [{"jti": "'
        + b"a" * 257
        + b'", "exp": 1}], "not_before": [], "next_cursor": 1}',
        b'{"revoked": [], "not_before": [], "next_cursor": 9223372036854775808}',
    ],
)
def test_malformed_pages_are_refused(body: bytes) -> None:
    with pytest.raises(FetchFailed, match="feed"):
        parse_feed_page(body)


# -- polling --------------------------------------------------------------------------------


def test_a_poll_follows_the_cursor_until_a_page_is_empty(
    fake: FakeIssuer, clock: FixedClock
) -> None:
    fake.feed = [revoked(seq) for seq in range(1, 2501)]
    fake.feed.append((2501, "not_before", {"sub": "42", "nbf": NOW}))
    p = poller(fake, clock)
    state = p.poll_once()
    afters = [r.url.params["after"] for r in fake.requests]
    assert afters == ["0", "1000", "2000", "2501"]
    assert all(r.url.params["limit"] == "1000" for r in fake.requests)
    assert state.cursor == 2501 and state.revoked == 2500 and state.not_before == 1
    assert state.last_success == NOW and state.last_error is None
    assert p.feed.denylist.refuses("j1234", "7", NOW)
    # The next poll starts from the cursor and finds nothing new in one request.
    fake.requests.clear()
    p.poll_once()
    assert [r.url.params["after"] for r in fake.requests] == ["2501"]


def test_credentials_are_form_encoded_for_basic_auth(fake: FakeIssuer, clock: FixedClock) -> None:
    # The fake accepts only "resource+server:s3cret%2B%2F%3D" (RFC 6749 2.3.1).
    fake.feed = [revoked(1)]
    assert poller(fake, clock).poll_once().last_error is None


def test_expired_entries_drop_out_at_the_next_poll(fake: FakeIssuer, clock: FixedClock) -> None:
    fake.feed = [revoked(1, exp=NOW + 10), revoked(2, exp=NOW + 1000)]
    p = poller(fake, clock)
    assert p.poll_once().revoked == 2
    clock.advance(10)
    assert p.poll_once().revoked == 1


def test_a_cursor_that_does_not_advance_ends_the_poll(clock: FixedClock) -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        body = {"revoked": [{"jti": "a", "exp": NOW + 10}], "not_before": [], "next_cursor": 0}
        return httpx.Response(200, json=body)

    p = RevocationPoller(feed_for(clock), httpx.Client(transport=httpx.MockTransport(handler)), 5)
    p.poll_once()
    assert calls == 1


def test_an_outage_keeps_the_denylist_and_is_logged_once(
    fake: FakeIssuer, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith.verify")
    fake.feed = [revoked(1)]
    p = poller(fake, clock)
    p.poll_once()
    fake.feed_error = httpx.ConnectError("down")
    for _ in range(5):
        clock.advance(5)
        state = p.poll_once()
    assert state.revoked == 1 and state.last_error == "request failed (ConnectError)"
    assert state.last_success == NOW and state.last_attempt == NOW + 25
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "revocation feed" in warnings[0].getMessage()
    fake.feed_error = None
    fake.feed.append(revoked(2))
    state = p.poll_once()
    assert state.last_error is None and state.revoked == 2
    assert caplog.records[-1].getMessage().endswith("reachable again")


@pytest.mark.parametrize(("status", "reason"), [(401, "HTTP 401"), (307, "redirect refused")])
def test_refusals_and_redirects_are_failures(
    fake: FakeIssuer, clock: FixedClock, status: int, reason: str
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"Location": "https://elsewhere.test/"})

    p = RevocationPoller(feed_for(clock), httpx.Client(transport=httpx.MockTransport(handler)), 5)
    state = p.poll_once()
    assert state.last_error is not None and state.last_error.startswith(reason)


# -- the thread and the task ----------------------------------------------------------------


def test_the_thread_polls_on_its_interval_until_stopped(
    fake: FakeIssuer, clock: FixedClock
) -> None:
    third = threading.Event()

    def count(request: httpx.Request) -> None:
        if fake.counts["/oauth/revocations"] >= 3:
            third.set()

    fake.on_request = count
    fake.feed = [revoked(1)]
    p = poller(fake, clock, interval=0.001)
    p.start()
    thread = p._thread
    assert thread is not None and thread.daemon
    assert third.wait(10)
    p.stop()
    assert not thread.is_alive()
    assert p.feed.denylist.refuses("j1", "42", NOW)


async def test_the_task_polls_on_its_interval_until_closed(
    fake: FakeIssuer, clock: FixedClock
) -> None:
    third = asyncio.Event()

    def count(request: httpx.Request) -> None:
        if fake.counts["/oauth/revocations"] >= 3:
            third.set()

    fake.on_request = count
    fake.feed = [revoked(1)]
    client = httpx.AsyncClient(transport=fake.async_transport())
    p = AsyncRevocationPoller(feed_for(clock), client, 0.001)
    p.start()
    task = p._task
    assert task is not None
    await asyncio.wait_for(third.wait(), 10)
    await p.aclose()
    assert task.cancelled()
    assert p.feed.state.revoked == 1
    await client.aclose()


def test_polls_from_two_threads_take_turns(fake: FakeIssuer, clock: FixedClock) -> None:
    first_inside, second_inside, release = threading.Event(), threading.Event(), threading.Event()

    def hold(request: httpx.Request) -> None:
        if fake.counts["/oauth/revocations"] == 1:
            first_inside.set()
            assert release.wait(10)
        else:
            second_inside.set()

    fake.on_request = hold
    p = poller(fake, clock)
    first = threading.Thread(target=p.poll_once)
    first.start()
    assert first_inside.wait(10)
    second = threading.Thread(target=p.poll_once)
    second.start()
    # While the first poll is in its request, the second must wait for it.
    assert not second_inside.wait(0.2)
    release.set()
    first.join(10)
    second.join(10)
    assert second_inside.is_set() and fake.counts["/oauth/revocations"] == 2


# -- a hostile feed -------------------------------------------------------------------------


HUGE = 10**400  # valid JSON; float(HUGE) and HUGE + 60.0 raise OverflowError


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_out_of_range_times_are_clamped_and_the_poll_goes_on(
    fake: FakeIssuer, clock: FixedClock, kind: str
) -> None:
    fake.feed = [
        (1, "revoked", {"jti": "huge", "exp": HUGE}),
        (2, "revoked", {"jti": "far", "exp": 1e300}),
        (3, "revoked", {"jti": "negative", "exp": -HUGE}),
        (4, "not_before", {"sub": "7", "nbf": HUGE}),
        (5, "revoked", {"jti": "victim", "exp": NOW + 900}),
    ]
    denylist = Denylist(leeway=60.0)  # a float leeway made HUGE + leeway overflow
    feed = feed_for(clock, denylist)
    if kind == "sync":
        state = RevocationPoller(feed, httpx.Client(transport=fake.transport()), 5).poll_once()
    else:

        async def poll() -> RevocationState:
            async with httpx.AsyncClient(transport=fake.async_transport()) as http:
                return await AsyncRevocationPoller(feed, http, 5).poll_once()

        state = asyncio.run(poll())
    assert state.last_error is None and state.cursor == 5
    latest = NOW + MAX_HORIZON + 60.0
    assert denylist.revoked["huge"] == latest and denylist.revoked["far"] == latest
    assert denylist.revoked["victim"] == NOW + 900 + 60.0
    assert denylist.not_before["7"] == NOW + MAX_HORIZON
    assert all(type(t) is float for t in denylist.revoked.values())
    assert denylist.revoked["negative"] == 60.0  # clamped to 0: gone at the next prune


def test_a_malformed_page_is_a_failed_poll_logged_once_without_traceback(
    fake: FakeIssuer, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.feed = [(1, "revoked", {"jti": "a", "exp": True})]
    caplog.set_level(logging.WARNING, "tokensmith.verify")
    p = poller(fake, clock)
    for _ in range(3):
        state = p.poll_once()
    assert state.last_error is not None and "malformed" in state.last_error and state.cursor == 0
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is None


def test_a_full_denylist_refuses_new_pages_loudly_and_takes_them_once_there_is_room(
    fake: FakeIssuer, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    denylist = Denylist(max_entries=2500)
    # A hostile feed: far-future entries, a cursor that always advances.
    fake.feed = [(seq, "revoked", {"jti": f"j{seq}", "exp": 1e300}) for seq in range(1, 3001)]
    p = RevocationPoller(feed_for(clock, denylist), httpx.Client(transport=fake.transport()), 5)
    caplog.set_level(logging.WARNING, "tokensmith.verify")
    state = p.poll_once()
    assert len(denylist) == 2000 and state.cursor == 2000  # the third page did not fit
    assert state.last_error is not None and "denylist is full" in state.last_error
    assert p.poll_once().cursor == 2000 and len(denylist) == 2000  # nothing evicted
    assert len(caplog.records) == 1
    # Once entries expire (clamped to the horizon), the waiting page goes in.
    clock.advance(MAX_HORIZON + 1)
    state = p.poll_once()
    assert state.last_error is None and state.cursor == 3000 and len(denylist) == 1000


def test_the_poller_thread_survives_a_hostile_feed(
    fake: FakeIssuer, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.feed = [
        (1, "revoked", {"jti": "evil", "exp": HUGE}),
        (2, "revoked", {"jti": "v", "exp": NOW}),
    ]
    p = poller(fake, clock, interval=0.01)
    p.feed.denylist = Denylist(leeway=60.0)
    p.start()
    try:
        deadline = time.monotonic() + 5
        while p.feed.state.cursor != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        p.stop()
    assert p.feed.state.cursor == 2 and "v" in p.feed.denylist.revoked
    assert not [r for r in caplog.records if r.exc_info is not None]
