"""Failed-login counters, in the database so every worker and instance throttles alike.

A row is one counter of the server's login throttle, under its key: ``count``,
``first_at``, ``last_at``, ``locked_until`` and ``expires_at``, times in float seconds
kept exactly. The policy (when a counter is forgotten, when it locks) lives in the
throttle service; each row carries the expiry that policy gave it, so pruning needs
none.

``update(key, change)`` is the read-modify-write of one counter, safe against writers
on other connections, processes and hosts: the row is read ``FOR UPDATE`` (PostgreSQL
locks it until commit; on SQLite the ``BEGIN IMMEDIATE`` of ``Database.transaction()``
already holds the one write lock, so run it there), and when two writers create the
same counter at once, the one whose INSERT loses re-reads the winner's row and applies
its change on top. Concurrent failures are all counted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import check_count, check_instant, check_name, rowcount
from .errors import ConcurrentChange
from .models import MAX_NAME, LoginFailureRow, table_of

__all__ = ["MAX_KEY", "LoginFailure", "LoginFailureChange", "LoginFailureRepository"]

_failures = table_of(LoginFailureRow)
#: The longest key the column takes; the throttle hashes longer ones.
MAX_KEY = 2 * MAX_NAME
#: How often ``update`` starts over when the row it read vanished or appeared meanwhile
#: (a concurrent reset or insert); each retry means another writer made progress.
_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class LoginFailure:
    """One counter. Times are float seconds since the epoch.

    ``expires_at`` is when the counter stops mattering (the later of the end of its quiet
    window and the end of its lock), as the policy that wrote it decided.
    """

    key: str
    count: int
    first_at: float
    last_at: float
    locked_until: float | None
    expires_at: float

    def locked(self, now: float) -> bool:
        return self.locked_until is not None and now < self.locked_until


#: What ``update`` applies: the current counter (None: none yet) to the new one (None:
#: delete it). It must be a pure function: it may run more than once.
LoginFailureChange = Callable[[LoginFailure | None], LoginFailure | None]


def _failure(row: Any) -> LoginFailure:
    return LoginFailure(
        row.key, row.count, row.first_at, row.last_at, row.locked_until, row.expires_at
    )


def _values(failure: LoginFailure) -> dict[str, object]:
    """The row of a counter, checked: SQLite would store anything, PostgreSQL refuse it."""
    if not isinstance(failure, LoginFailure):
        raise TypeError("a LoginFailure is needed")
    check_name("key", failure.key, max_length=MAX_KEY)
    locked_until = failure.locked_until
    return {
        "key": failure.key,
        "count": check_count("count", failure.count),
        "first_at": check_instant("first_at", failure.first_at),
        "last_at": check_instant("last_at", failure.last_at),
        "locked_until": None
        if locked_until is None
        else check_instant("locked_until", locked_until),
        "expires_at": check_instant("expires_at", failure.expires_at),
    }


class LoginFailureRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: str) -> LoginFailure | None:
        row = (await self.session.execute(select(_failures).where(_failures.c.key == key))).first()
        return None if row is None else _failure(row)

    async def get_many(self, keys: Iterable[str]) -> dict[str, LoginFailure]:
        """The counters that exist among ``keys`` (a login checks two at once)."""
        wanted = list(keys)
        query = select(_failures).where(_failures.c.key.in_(wanted))
        return {row.key: _failure(row) for row in await self.session.execute(query)}

    async def put(self, failure: LoginFailure) -> None:
        """Store ``failure`` under its key, replacing the counter there (an upsert)."""
        values = _values(failure)
        if not await self._replace(values) and not await self._insert(values):
            await self._replace(values)  # another writer inserted it first: replace theirs

    async def update(self, key: str, change: LoginFailureChange) -> LoginFailure | None:
        """Replace the counter at ``key`` by ``change(counter)`` with no writer in between.

        Run it in a write transaction (``Database.transaction()``); returns what was
        stored (None: deleted, or nothing to store). ``ConcurrentChange`` only if other
        writers kept creating and deleting the row through every attempt.
        """
        return (await self.update_many({key: change}))[key]

    async def update_many(
        self, changes: Mapping[str, LoginFailureChange]
    ) -> dict[str, LoginFailure | None]:
        """``update`` of several counters, their rows read (and locked) in one statement,
        in key order, so two writers of the same keys never wait on each other crosswise."""
        keys = sorted(changes)
        for key in keys:
            check_name("key", key, max_length=MAX_KEY)
        results: dict[str, LoginFailure | None] = {}
        pending = keys
        for _ in range(_ATTEMPTS):
            query = (
                select(_failures)
                .where(_failures.c.key.in_(pending))
                .order_by(_failures.c.key)
                .with_for_update()
            )
            current = {row.key: _failure(row) for row in await self.session.execute(query)}
            raced = []
            for key in pending:
                before = current.get(key)
                new = changes[key](before)
                if new is not None and new.key != key:
                    raise ValueError("the change must keep the counter's key")
                if new is None:
                    if before is not None:
                        await self.reset(key)
                    results[key] = None
                    continue
                values = _values(new)
                # Replacing fails only if the row was deleted after our read, inserting only
                # if it was created after it (PostgreSQL: FOR UPDATE locks no row that did
                # not exist yet; the other insert has committed by the time ours fails).
                # Either way the next read sees the row as it is, and the change applies
                # again on top of it.
                written = await (self._insert(values) if before is None else self._replace(values))
                if written:
                    results[key] = new
                else:
                    raced.append(key)
            if not raced:
                return results
            pending = raced
        raise ConcurrentChange()

    async def reset(self, key: str) -> None:
        """Forget a key's failures (after a successful login)."""
        await self.session.execute(delete(_failures).where(_failures.c.key == key))

    async def prune(self, now: float) -> int:
        """Delete the counters whose ``expires_at`` has come (``<= now``)."""
        moment = check_instant("now", now)
        statement = delete(_failures).where(_failures.c.expires_at <= moment)
        return rowcount(await self.session.execute(statement))

    async def _insert(self, values: dict[str, object]) -> bool:
        """Insert the row; False if its key exists (the savepoint keeps the transaction)."""
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(_failures).values(**values))
        except IntegrityError:
            return False
        return True

    async def _replace(self, values: dict[str, object]) -> bool:
        statement = update(_failures).where(_failures.c.key == values["key"]).values(**values)
        return rowcount(await self.session.execute(statement)) > 0
