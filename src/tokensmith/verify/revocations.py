"""Keeping the denylist in step with the issuer's feed, ``GET /oauth/revocations?after=N``.

A poll asks for the entries after its cursor and follows ``next_cursor`` page by page
until a page comes back empty. The sync poller runs in a daemon thread, the async one
in an asyncio task; both drive one ``RevocationFeed`` (``_revocation_feed.py``: the
cursor, the paging, the state and the logging) and only run the requests it asks for.
When the feed cannot be reached, verification goes on with the denylist as it is:
the outage is logged once, and the state says since when polls fail.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx

from ._http import FetchFailed, get_limited, get_limited_async
from ._revocation_feed import (
    FEED_PATH,
    MAX_PAGES_PER_POLL,
    FeedPage,
    RevocationFeed,
    RevocationState,
    parse_feed_page,
)
from ._revocation_feed import MAX_HORIZON as MAX_HORIZON  # tests and callers read it here

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
                if not feed.apply(get_limited(self._client, **feed.page_request())):
                    break
        except FetchFailed as exc:
            return feed.failed(exc.reason)
        return feed.succeeded()

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
                if not feed.apply(await get_limited_async(self._client, **feed.page_request())):
                    break
        except FetchFailed as exc:
            return feed.failed(exc.reason)
        return feed.succeeded()

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
