"""How long tokens issued so far may live: what key and not-before retention must cover.

A retired key stays published, and a not-before time stays in force, for the longest
token lifetime plus the leeway (the retention). That lifetime is a setting: lowered
and restarted, a server would compute retention from the new value while tokens
signed under the old one still live. Two rows of the ``counters`` table remember it:
``token_retention``, the retention last configured, and ``old_tokens_expire_by``, the
time by which every token issued under a longer former retention has expired.

Every server start records the retention, so two instances sharing a PostgreSQL
database may do it at once: the rows are read locked, and an insert that loses the
race to the other instance's is taken back (a savepoint) and the change made again
on the rows as they now are. A process whose settings are not the deployment's (the
CLI's commands other than ``init`` and ``serve``) only reads: ``expire_by`` is what
``record`` would return, and nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import check_count, check_time
from .errors import ConcurrentChange
from .models import CounterRow, table_of

__all__ = ["StoredRetention", "TokenRetentionRepository"]

RETENTION = "token_retention"
EXPIRE_BY = "old_tokens_expire_by"

_counters = table_of(CounterRow)
_SELECT = select(_counters.c.name, _counters.c.value).where(
    _counters.c.name.in_((RETENTION, EXPIRE_BY))
)
_READ = _SELECT.with_for_update()
# The second attempt finds both rows (they are never deleted) and holds their locks.
_ATTEMPTS = 2


@dataclass(frozen=True, slots=True)
class StoredRetention:
    """The two rows as stored: ``retention`` is None before the first ``record``."""

    retention: int | None
    old_tokens_expire_by: int

    def expire_by(self, retention: int, now: int) -> int:
        """``old_tokens_expire_by`` once ``retention`` is noted at ``now``.

        A retention lower than the stored one moves it to ``now`` plus the stored one
        (tokens issued until now may live that long); a higher or equal one moves nothing.
        """
        if self.retention is not None and retention < self.retention:
            return max(self.old_tokens_expire_by, now + self.retention)
        return self.old_tokens_expire_by


class TokenRetentionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stored(self) -> StoredRetention:
        """The rows as they are, read without a lock; any transaction will do."""
        rows = {row.name: int(row.value) for row in await self.session.execute(_SELECT)}
        return _stored(rows)

    async def expire_by(self, retention: int, now: int) -> int:
        """What ``record(retention, now)`` would return, without writing anything.

        For a process whose ``retention`` is not the deployment's (a CLI command run
        with other settings than the server's): when it is lower than the stored one,
        the result still covers the tokens issued under the stored one until ``now``,
        so a deletion time computed from it is never earlier than the server's.
        """
        check_count("retention", retention, minimum=1)
        check_time("now", now)
        return (await self.stored()).expire_by(retention, now)

    async def record(self, retention: int, now: int) -> int:
        """Note the retention now configured; returns ``old_tokens_expire_by``.

        Lowering the retention moves that time to ``now`` plus the former retention
        (tokens issued until now may live that long); raising it changes nothing there.
        Call it in a write transaction.
        """
        check_count("retention", retention, minimum=1)
        check_time("now", now)
        for _ in range(_ATTEMPTS):
            stored = await self._read()
            expire_by = _stored(stored).expire_by(retention, now)
            try:
                async with self.session.begin_nested():
                    await self._put(RETENTION, retention, RETENTION in stored)
                    await self._put(EXPIRE_BY, expire_by, EXPIRE_BY in stored)
            except IntegrityError:
                # Another instance inserted a row after our read (PostgreSQL locks no
                # row that did not exist yet); it has committed, so read it again.
                continue
            return expire_by
        raise ConcurrentChange()

    async def _read(self) -> dict[str, int]:
        return {row.name: int(row.value) for row in await self.session.execute(_READ)}

    async def _put(self, name: str, value: int, exists: bool) -> None:
        if exists:
            statement = update(_counters).where(_counters.c.name == name).values(value=value)
            await self.session.execute(statement)
        else:
            await self.session.execute(insert(_counters).values(name=name, value=value))


def _stored(rows: dict[str, int]) -> StoredRetention:
    return StoredRetention(rows.get(RETENTION), rows.get(EXPIRE_BY, 0))
