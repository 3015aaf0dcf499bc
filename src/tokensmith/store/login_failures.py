"""Failed-login counters, in the database so every instance throttles alike.

The throttle policy (how long to slow down, when to lock) lives in the server's
throttle service; this only keeps the counters. ``increment`` is one UPDATE of
``count = count + 1`` (an INSERT the first time), so concurrent failures on
one key are all counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import check_count, check_name, check_time, rowcount
from .models import MAX_NAME, LoginFailureRow, table_of

__all__ = ["LoginFailure", "LoginFailureRepository"]

_failures = table_of(LoginFailureRow)
MAX_KEY = 2 * MAX_NAME


@dataclass(frozen=True, slots=True)
class LoginFailure:
    key: str
    count: int
    first_at: int
    last_at: int
    locked_until: int | None

    def locked(self, now: int) -> bool:
        return self.locked_until is not None and now < self.locked_until


def _failure(row: Any) -> LoginFailure:
    return LoginFailure(row.key, row.count, row.first_at, row.last_at, row.locked_until)


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

    async def increment(self, key: str, now: int) -> LoginFailure:
        """Count one more failure at ``now``; returns the counter after it."""
        check_name("key", key, max_length=MAX_KEY)
        check_time("now", now)
        bump = (
            update(_failures)
            .where(_failures.c.key == key)
            .values(count=_failures.c.count + 1, last_at=now)
        )
        if rowcount(await self.session.execute(bump)) == 0:
            try:
                async with self.session.begin_nested():
                    row = {"key": key, "count": 1, "first_at": now, "last_at": now}
                    await self.session.execute(insert(_failures).values(**row))
            except IntegrityError:
                # Another instance inserted it first: count on top of theirs.
                await self.session.execute(bump)
        failure = await self.get(key)
        assert failure is not None
        return failure

    async def lock(self, key: str, until: int) -> None:
        """Refuse logins for ``key`` until ``until`` (the counter must exist)."""
        check_time("until", until)
        statement = update(_failures).where(_failures.c.key == key).values(locked_until=until)
        if rowcount(await self.session.execute(statement)) == 0:
            raise LookupError("no failures are counted for that key")

    async def reset(self, key: str) -> None:
        """Forget a key's failures (after a successful login)."""
        await self.session.execute(delete(_failures).where(_failures.c.key == key))

    async def prune(self, now: int, *, idle: int) -> int:
        """Delete counters with no failure for ``idle`` seconds and no lock in force."""
        check_time("now", now)
        check_count("idle", idle)
        statement = delete(_failures).where(
            _failures.c.last_at <= now - idle,
            or_(_failures.c.locked_until.is_(None), _failures.c.locked_until <= now),
        )
        return rowcount(await self.session.execute(statement))
