"""How long tokens issued so far may live: what key and not-before retention must cover.

A retired key stays published, and a not-before time stays in force, for the longest
token lifetime plus the leeway (the retention). That lifetime is a setting: lowered
and restarted, a server would compute retention from the new value while tokens
signed under the old one still live. Two rows of the ``counters`` table remember it:
``token_retention``, the retention last configured, and ``old_tokens_expire_by``, the
time by which every token issued under a longer former retention has expired.
"""

from __future__ import annotations

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import check_count, check_time
from .models import CounterRow, table_of

__all__ = ["TokenRetentionRepository"]

RETENTION = "token_retention"
EXPIRE_BY = "old_tokens_expire_by"

_counters = table_of(CounterRow)


class TokenRetentionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(self, retention: int, now: int) -> int:
        """Note the retention now configured; returns ``old_tokens_expire_by``.

        Lowering the retention moves that time to ``now`` plus the former retention
        (tokens issued until now may live that long); raising it changes nothing there.
        Call it in a write transaction.
        """
        check_count("retention", retention, minimum=1)
        check_time("now", now)
        query = select(_counters.c.name, _counters.c.value).where(
            _counters.c.name.in_((RETENTION, EXPIRE_BY))
        )
        stored = {row.name: int(row.value) for row in await self.session.execute(query)}
        expire_by = stored.get(EXPIRE_BY, 0)
        former = stored.get(RETENTION)
        if former is not None and retention < former:
            expire_by = max(expire_by, now + former)
        await self._put(RETENTION, retention, RETENTION in stored)
        await self._put(EXPIRE_BY, expire_by, EXPIRE_BY in stored)
        return expire_by

    async def _put(self, name: str, value: int, exists: bool) -> None:
        if exists:
            statement = update(_counters).where(_counters.c.name == name).values(value=value)
            await self.session.execute(statement)
        else:
            await self.session.execute(insert(_counters).values(name=name, value=value))
