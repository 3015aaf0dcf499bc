"""The revocation feed, without I/O: reading its pages, and the poll's bookkeeping.

``GET /oauth/revocations?after=N`` answers with the entries after cursor ``N`` and the
cursor to ask from next. ``RevocationFeed`` holds the cursor and the state, says what
to ask for, applies each answer to the denylist and logs outages once; the pollers
(``revocations.py``) only run the requests it asks for, from a thread or a task.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import quote_plus

import httpx

from tokensmith.clock import Clock

from ._http import Fetched, FetchFailed
from .denylist import Denylist

__all__ = [
    "FEED_PATH",
    "MAX_HORIZON",
    "MAX_PAGES_PER_POLL",
    "FeedPage",
    "PageRequest",
    "RevocationFeed",
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
#: A jti or subject longer than this is not one the issuer wrote; it bounds what
#: one denylist entry can cost.
MAX_ID_LENGTH = 256
#: The cursor is a database sequence number.
MAX_CURSOR = 2**63 - 1
#: Times further ahead than this are clamped to it (see ``RevocationFeed.apply``).
MAX_HORIZON = 10 * 366 * 86_400


@dataclass(frozen=True, slots=True)
class FeedPage:
    revoked: tuple[tuple[str, float], ...]
    not_before: tuple[tuple[str, float], ...]
    next_cursor: int

    @property
    def empty(self) -> bool:
        return not self.revoked and not self.not_before


def _number(value: Any) -> bool:
    # Not bool (type(True) is bool); a JSON integer may have hundreds of digits, so
    # it is compared, never converted, before being clamped.
    return type(value) is int or (type(value) is float and math.isfinite(value))


def _entries(document: dict[str, Any], name: str, key: str, time: str) -> list[tuple[str, float]]:
    items = document.get(name)
    if type(items) is not list:
        raise FetchFailed(f"feed: {name} is not a list")
    entries: list[tuple[str, float]] = []
    for item in items:
        if type(item) is not dict:
            raise FetchFailed(f"feed: an entry of {name} is malformed")
        ident: Any = item.get(key)
        moment: Any = item.get(time)
        if type(ident) is not str or not 0 < len(ident) <= MAX_ID_LENGTH or not _number(moment):
            raise FetchFailed(f"feed: an entry of {name} is malformed")
        entries.append((ident, moment))
    return entries


def _clamp(moment: float, latest: float) -> float:
    """``moment`` within ``[0, latest]`` as a float: a finite sum, whatever was sent."""
    return float(min(max(moment, 0), latest))


def parse_feed_page(body: bytes) -> FeedPage:
    """Read one page of the feed; raise ``FetchFailed`` when it is not one."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise FetchFailed("feed: the page is not JSON") from None
    if type(document) is not dict:
        raise FetchFailed("feed: the page is not a JSON object")
    cursor = document.get("next_cursor")
    if type(cursor) is not int or not 0 <= cursor <= MAX_CURSOR:
        raise FetchFailed("feed: next_cursor is not a non-negative 64-bit integer")
    return FeedPage(
        revoked=tuple(_entries(document, "revoked", "jti", "exp")),
        not_before=tuple(_entries(document, "not_before", "sub", "nbf")),
        next_cursor=cursor,
    )


class PageRequest(TypedDict):
    """The GET for the next page, as ``get_limited`` and ``get_limited_async`` take it."""

    url: str
    params: dict[str, str]
    auth: httpx.Auth
    timeout: float
    max_bytes: int


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
    """The poll bookkeeping both pollers share: where the feed is, the cursor, the state.

    A poll is ``begin()``, then ``apply()`` of each page fetched as ``page_request()``
    says, for as long as it returns True (a poller stops after ``MAX_PAGES_PER_POLL``),
    then ``succeeded()`` or ``failed(reason)``, which return the state after the poll.
    """

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

    def page_request(self) -> PageRequest:
        """What to ask for next: the page after the cursor."""
        return PageRequest(
            url=self.url,
            params=self.params(),
            auth=self.auth,
            timeout=self.timeout,
            max_bytes=MAX_PAGE_BYTES,
        )

    def apply(self, fetched: Fetched) -> bool:
        """Apply one answer; True when the next page should be asked for."""
        if 300 <= fetched.status < 400:
            raise FetchFailed(f"redirect refused (HTTP {fetched.status})")
        if fetched.status != 200:
            raise FetchFailed(f"HTTP {fetched.status}")
        page = parse_feed_page(fetched.body)
        denylist = self.denylist
        # A page is applied whole or not at all, so the cursor never skips an entry.
        # When it does not fit, the poll fails loudly and is retried once expired
        # entries have been pruned: evicting a revocation would accept its token.
        new = len({jti for jti, _ in page.revoked if jti not in denylist.revoked})
        new += len({sub for sub, _ in page.not_before if sub not in denylist.not_before})
        if new > denylist.room():
            raise FetchFailed(
                f"feed: the denylist is full ({len(denylist)} of {denylist.max_entries} "
                "entries); the page waits until entries expire"
            )
        # Far-future times are clamped, not refused: the revocation still holds (for
        # ten years), and memory is bounded by the entry cap and the pruning.
        latest = self._clock.now() + MAX_HORIZON
        for jti, exp in page.revoked:
            denylist.revoke(jti, _clamp(exp, latest))
        for subject, nbf in page.not_before:
            denylist.set_not_before(subject, _clamp(nbf, latest))
        # A cursor that does not advance would ask for the same page forever.
        if page.empty or page.next_cursor <= self._cursor:
            return False
        self._cursor = page.next_cursor
        return True

    def succeeded(self) -> RevocationState:
        """The poll read the feed to its end (or its page budget): the state after it."""
        if self._last_error is not None:
            logger.info("revocation feed %s reachable again", self.url)
        self._last_success = self._clock.now()
        self._last_error = None
        return self.state

    def failed(self, reason: str) -> RevocationState:
        """The poll failed; the first failure of an outage is logged. The state after it."""
        if self._last_error is None:
            logger.warning(
                "revocation feed %s failed: %s; verifying with the denylist as it is",
                self.url,
                reason,
            )
        self._last_error = reason
        return self.state
