"""Revoked access tokens (by jti, until they expire) and per-subject "not before" times.

Both feed ``GET /oauth/revocations?after=CURSOR``, which lets verifiers keep a
local denylist. They share one cursor space: every new revocation and every
raised not-before time draws the next number from the ``revocation_feed``
counter row. Drawing updates that row and holds its lock until commit, so on
PostgreSQL too the numbers become visible in the order they were drawn, and a
verifier that has read up to N never misses a later-committed N-1. Numbers
are never reused, even after pruning.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, null, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import check_count, check_name, check_time, rowcount
from .models import CounterRow, RevokedTokenRow, SubjectNotBeforeRow, table_of

__all__ = ["FeedPage", "NotBefore", "RevocationRepository", "RevokedToken"]

FEED_COUNTER = "revocation_feed"

_revoked = table_of(RevokedTokenRow)
_not_before = table_of(SubjectNotBeforeRow)
_counters = table_of(CounterRow)


@dataclass(frozen=True, slots=True)
class RevokedToken:
    seq: int
    jti: str
    subject: str
    expires_at: int
    revoked_at: int


@dataclass(frozen=True, slots=True)
class NotBefore:
    """Tokens of ``subject`` issued before ``not_before`` are no longer valid."""

    seq: int
    subject: str
    not_before: int


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One page of the feed, each list in cursor order; ask again with ``after=next_cursor``."""

    revoked: list[RevokedToken]
    not_before: list[NotBefore]
    next_cursor: int


class RevocationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, jti: str, subject: str, expires_at: int, now: int) -> bool:
        """Denylist an access token until ``expires_at``; False if it already was."""
        check_name("jti", jti)
        check_name("subject", subject)
        check_time("expires_at", expires_at)
        check_time("now", now)
        # The counter first: its lock serializes concurrent revocations, so the
        # existence check below cannot race (and the insert cannot collide).
        seq = await self._next_seq()
        if await self.is_revoked(jti):
            return False
        values = {
            "jti": jti,
            "subject": subject,
            "expires_at": expires_at,
            "revoked_at": now,
            "seq": seq,
        }
        await self.session.execute(insert(_revoked).values(**values))
        return True

    async def is_revoked(self, jti: str) -> bool:
        query = select(_revoked.c.jti).where(_revoked.c.jti == jti)
        return (await self.session.execute(query)).first() is not None

    async def get_not_before(self, subject: str) -> int | None:
        query = select(_not_before.c.not_before).where(_not_before.c.subject == subject)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def set_not_before(self, subject: str, not_before: int) -> int:
        """Invalidate ``subject``'s tokens issued before ``not_before``; returns the time in force.

        The time only moves forward: an earlier one than stored changes nothing
        (and does not appear in the feed again).
        """
        check_name("subject", subject)
        check_time("not_before", not_before)
        seq = await self._next_seq()
        stored = await self.get_not_before(subject)
        if stored is None:
            row = {"subject": subject, "not_before": not_before, "seq": seq}
            await self.session.execute(insert(_not_before).values(**row))
        elif not_before > stored:
            statement = (
                update(_not_before)
                .where(_not_before.c.subject == subject)
                .values(not_before=not_before, seq=seq)
            )
            await self.session.execute(statement)
        else:
            return stored
        return not_before

    async def feed(self, after: int, limit: int, now: int) -> FeedPage:
        """Entries numbered after ``after``: unexpired revocations and not-before times.

        At most ``limit`` entries in all. ``next_cursor`` is the number of the
        last entry returned, or ``after`` when there is none. Revocations that
        expired are left out (a verifier rejects their tokens anyway).
        """
        check_count("after", after)
        check_count("limit", limit, minimum=1)
        check_time("now", now)
        # One statement, so one snapshot: two SELECTs would see two under PostgreSQL's
        # READ COMMITTED, and an entry committed between them (numbered below the
        # cursor the second one returns) would never be delivered.
        revoked = select(
            _revoked.c.seq,
            _revoked.c.subject,
            _revoked.c.jti,
            _revoked.c.expires_at.label("time"),
            _revoked.c.revoked_at,
        ).where(_revoked.c.seq > after, _revoked.c.expires_at > now)
        not_before = select(
            _not_before.c.seq,
            _not_before.c.subject,
            null().label("jti"),
            _not_before.c.not_before.label("time"),
            null().label("revoked_at"),
        ).where(_not_before.c.seq > after)
        entries = union_all(revoked, not_before).order_by("seq").limit(limit)
        revoked_tokens: list[RevokedToken] = []
        not_before_times: list[NotBefore] = []
        cursor = after
        for row in await self.session.execute(entries):
            if row.jti is None:
                not_before_times.append(NotBefore(row.seq, row.subject, row.time))
            else:
                revoked_tokens.append(
                    RevokedToken(row.seq, row.jti, row.subject, row.time, row.revoked_at)
                )
            cursor = row.seq
        return FeedPage(revoked_tokens, not_before_times, cursor)

    async def prune(self, now: int, *, not_before_until: int | None = None) -> int:
        """Delete revocations past their expiry, and not-before times up to ``not_before_until``.

        A not-before time matters only while a token issued before it can still
        be unexpired: ``not_before_until = now - longest token lifetime - leeway``.
        None keeps them all. Returns how many rows went.
        """
        check_time("now", now)
        check_time("not_before_until", not_before_until, optional=True)
        result = await self.session.execute(delete(_revoked).where(_revoked.c.expires_at <= now))
        count = rowcount(result)
        if not_before_until is not None:
            statement = delete(_not_before).where(_not_before.c.not_before <= not_before_until)
            count += rowcount(await self.session.execute(statement))
        return count

    async def _next_seq(self) -> int:
        where = _counters.c.name == FEED_COUNTER
        bump = update(_counters).where(where).values(value=_counters.c.value + 1)
        if rowcount(await self.session.execute(bump)) == 0:
            # The migration creates the row; a schema made by create_all has none yet.
            try:
                async with self.session.begin_nested():
                    row = {"name": FEED_COUNTER, "value": 1}
                    await self.session.execute(insert(_counters).values(**row))
                return 1
            except IntegrityError:
                await self.session.execute(bump)
        query = select(_counters.c.value).where(where)
        return int((await self.session.execute(query)).scalar_one())
