"""Keeping the denylist in step with the issuer's feed, ``GET /oauth/revocations?after=N``.

A poll asks for the entries after its cursor and follows ``next_cursor`` page by page
until a page comes back empty. The sync poller runs in a daemon thread, the async one
in an asyncio task; both share ``RevocationFeed`` (cursor, paging, state, logging).
When the feed cannot be reached, verification goes on with the denylist as it is:
the outage is logged once, and the state says since when polls fail.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx

from tokensmith.clock import Clock

from ._http import Fetched, FetchFailed, get_limited, get_limited_async
from .denylist import Denylist

__all__ = [
    "FEED_PATH",
    "AsyncRevocationPoller",
    "FeedPage",
    "RevocationFeed",
    "RevocationPoller",
    "RevocationState",
    "parse_feed_page",
]

logger = logging.getLogger("tokensmith.verify")

FEED_PATH = "/oauth/revocations"
#: The largest page the token server gives; fewer round trips after a long outage.
PAGE_LIMIT = 1000
#: Pages read in one poll at most; the next poll goes on from the cursor.
MAX_PAGES_PER_POLL = 100
#: A full page is about 100 KB; anything far larger is not the feed.
MAX_PAGE_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FeedPage:
    revoked: tuple[tuple[str, float], ...]
    not_before: tuple[tuple[str, float], ...]
    next_cursor: int

    @property
    def empty(self) -> bool:
        return not self.revoked and not self.not_before


def _number(value: Any) -> bool:
    return type(value) in (int, float) and value == value and abs(value) != float("inf")


def _entries(document: dict[str, Any], name: str, key: str, time: str) -> list[tuple[str, float]]:
    items = document.get(name)
    if type(items) is not list:
        raise FetchFailed(f"feed: {name} is not a list")
    entries = []
    for item in items:
        if type(item) is not dict or type(item.get(key)) is not str or not _number(item.get(time)):
            raise FetchFailed(f"feed: an entry of {name} is malformed")
        entries.append((item[key], item[time]))
    return entries


def parse_feed_page(body: bytes) -> FeedPage:
    """Read one page of the feed; raise ``FetchFailed`` when it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise FetchFailed("feed: the page is not JSON") from None
    if type(document) is not dict:
        raise FetchFailed("feed: the page is not a JSON object")
    cursor = document.get("next_cursor")
    if type(cursor) is not int or cursor < 0:
        raise FetchFailed("feed: next_cursor is not a non-negative integer")
    return FeedPage(
        revoked=tuple(_entries(document, "revoked", "jti", "exp")),
        not_before=tuple(_entries(document, "not_before", "sub", "nbf")),
        next_cursor=cursor,
    )


@dataclass(frozen=True, slots=True)
class RevocationState:
    """How the denylist stands against the feed. Never contains a credential."""

    cursor: int
    #: When a poll last read the feed to its end, and when one last started.
    last_success: float | None
    last_attempt: float | None
    #: Why the last poll failed, None once a poll succeeds.
    last_error: str | None
    revoked: int
    not_before: int


class RevocationFeed:
    """The poll bookkeeping both pollers share: where the feed is, the cursor, the state."""

    def __init__(
        self,
        url: str,
        client_id: str,
        client_secret: str,
        denylist: Denylist,
        clock: Clock,
        *,
        timeout: float = 5.0,
    ) -> None:
        self.url = url
        # RFC 6749 2.3.1: both parts are form-urlencoded before Basic encoding.
        self.auth = httpx.BasicAuth(quote_plus(client_id), quote_plus(client_secret))
        self.denylist = denylist
        self.timeout = timeout
        self._clock = clock
        self._cursor = 0
        self._last_success: float | None = None
        self._last_attempt: float | None = None
        self._last_error: str | None = None

    @property
    def state(self) -> RevocationState:
        return RevocationState(
            cursor=self._cursor,
            last_success=self._last_success,
            last_attempt=self._last_attempt,
            last_error=self._last_error,
            revoked=len(self.denylist.revoked),
            not_before=len(self.denylist.not_before),
        )

    def begin(self) -> None:
        now = self._clock.now()
        self._last_attempt = now
        self.denylist.prune(now)

    def params(self) -> dict[str, str]:
        return {"after": str(self._cursor), "limit": str(PAGE_LIMIT)}

    def apply(self, fetched: Fetched) -> bool:
        """Apply one answer; True when the next page should be asked for."""
        if 300 <= fetched.status < 400:
            raise FetchFailed(f"redirect refused (HTTP {fetched.status})")
        if fetched.status != 200:
            raise FetchFailed(f"HTTP {fetched.status}")
        page = parse_feed_page(fetched.body)
        for jti, exp in page.revoked:
            self.denylist.revoke(jti, exp)
        for subject, nbf in page.not_before:
            self.denylist.set_not_before(subject, nbf)
        # A cursor that does not advance would ask for the same page forever.
        if page.empty or page.next_cursor <= self._cursor:
            return False
        self._cursor = page.next_cursor
        return True

    def succeeded(self) -> None:
        if self._last_error is not None:
            logger.info("revocation feed %s reachable again", self.url)
        self._last_success = self._clock.now()
        self._last_error = None

    def failed(self, reason: str) -> None:
        if self._last_error is None:
            logger.warning(
                "revocation feed %s failed: %s; verifying with the denylist as it is",
                self.url,
                reason,
            )
        self._last_error = reason


class RevocationPoller:
    """Polls the feed from a daemon thread; ``poll_once`` also works on its own."""

    def __init__(self, feed: RevocationFeed, client: httpx.Client, interval: float) -> None:
        self.feed = feed
        self._client = client
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A poll asked for by hand must not interleave with the thread's: the cursor
        # and the denylist's expiry heaps are updated in several steps.
        self._polling = threading.Lock()

    def poll_once(self) -> RevocationState:
        with self._polling:
            return self._poll()

    def _poll(self) -> RevocationState:
        feed = self.feed
        feed.begin()
        try:
            for _ in range(MAX_PAGES_PER_POLL):
                fetched = get_limited(
                    self._client,
                    feed.url,
                    params=feed.params(),
                    auth=feed.auth,
                    timeout=feed.timeout,
                    max_bytes=MAX_PAGE_BYTES,
                )
                if not feed.apply(fetched):
                    break
        except FetchFailed as exc:
            feed.failed(exc.reason)
        else:
            feed.succeeded()
        return feed.state

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="tokensmith-revocations", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the thread; waits for a poll in progress (bounded by the fetch timeout)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout if timeout is not None else self.feed.timeout * 2 + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # a bug must not end revocation checking silently
                logger.exception("revocation poll crashed")
            self._stop.wait(self._interval)


class AsyncRevocationPoller:
    """Polls the feed from an asyncio task; ``poll_once`` also works on its own."""

    def __init__(self, feed: RevocationFeed, client: httpx.AsyncClient, interval: float) -> None:
        self.feed = feed
        self._client = client
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> RevocationState:
        feed = self.feed
        feed.begin()
        try:
            for _ in range(MAX_PAGES_PER_POLL):
                fetched = await get_limited_async(
                    self._client,
                    feed.url,
                    params=feed.params(),
                    auth=feed.auth,
                    timeout=feed.timeout,
                    max_bytes=MAX_PAGE_BYTES,
                )
                if not feed.apply(fetched):
                    break
        except FetchFailed as exc:
            feed.failed(exc.reason)
        else:
            feed.succeeded()
        return feed.state

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:  # a bug must not end revocation checking silently
                logger.exception("revocation poll crashed")
            await asyncio.sleep(self._interval)
