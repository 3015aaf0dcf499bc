"""The throttle's counters in the database: every worker and every instance counts alike.

``MemoryThrottleStore`` is per process, so ``serve --workers N`` would give an attacker
who spreads guesses over the workers N times the allowance. ``DatabaseThrottleStore``
keeps the counters in the ``login_failures`` table through ``LoginFailureRepository``,
one row per key, times as exact float seconds.

- ``update`` (the ``AtomicThrottleStore`` hook ``Throttle.failed`` uses) applies both of
  a failure's changes in one write transaction: ``BEGIN IMMEDIATE`` on SQLite, rows read
  ``FOR UPDATE`` on PostgreSQL, in one statement and key order so two writers never wait
  on each other crosswise. Two workers failing on one key at once are both counted.
- ``get`` and ``get_many`` (a check reads both counters in one snapshot) take no write
  lock; ``put`` is an upsert.
- Keys longer than the column (``MAX_KEY``) are stored as their SHA-256, so a crafted
  username cannot make a failure fail to count.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from tokensmith.store import Database, LoginFailure, LoginFailureChange, LoginFailureRepository
from tokensmith.store.login_failures import MAX_KEY

from .throttle_store import StateChange, ThrottleState

__all__ = ["DatabaseThrottleStore", "stored_key"]


def stored_key(key: str) -> str:
    """The row key of a counter key: itself, or its SHA-256 when too long for the column."""
    if len(key) <= MAX_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _state(failure: LoginFailure | None) -> ThrottleState | None:
    return None if failure is None else _counter(failure)


def _counter(failure: LoginFailure) -> ThrottleState:
    return ThrottleState(
        count=failure.count,
        first_at=failure.first_at,
        last_at=failure.last_at,
        locked_until=failure.locked_until,
        expires_at=failure.expires_at,
    )


def _failure(key: str, state: ThrottleState) -> LoginFailure:
    return LoginFailure(
        key=key,
        count=state.count,
        first_at=state.first_at,
        last_at=state.last_at,
        locked_until=state.locked_until,
        expires_at=state.expires_at,
    )


def _applying(row_key: str, change: StateChange) -> LoginFailureChange:
    """``change`` as the repository applies it: on rows, under the row's key."""

    def apply(current: LoginFailure | None) -> LoginFailure:
        return _failure(row_key, change(_state(current)))

    return apply


class DatabaseThrottleStore:
    """A ``ThrottleStore`` (and ``AtomicThrottleStore``) over the ``login_failures`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> ThrottleState | None:
        async with self.db.read() as session:
            return _state(await LoginFailureRepository(session).get(stored_key(key)))

    async def put(self, key: str, state: ThrottleState) -> None:
        async with self.db.transaction() as session:
            await LoginFailureRepository(session).put(_failure(stored_key(key), state))

    async def delete(self, key: str) -> None:
        async with self.db.transaction() as session:
            await LoginFailureRepository(session).reset(stored_key(key))

    async def prune(self, now: float) -> int:
        async with self.db.transaction() as session:
            return await LoginFailureRepository(session).prune(now)

    async def get_many(self, keys: Iterable[str]) -> dict[str, ThrottleState]:
        rows = {stored_key(key): key for key in keys}
        async with self.db.read() as session:
            found = await LoginFailureRepository(session).get_many(rows)
        return {rows[row_key]: _counter(failure) for row_key, failure in found.items()}

    async def update(self, changes: Mapping[str, StateChange]) -> dict[str, ThrottleState]:
        rows = {stored_key(key): key for key in changes}
        if len(rows) != len(changes):
            raise ValueError("two keys of one update share a row")
        row_changes = {row_key: _applying(row_key, changes[key]) for row_key, key in rows.items()}
        async with self.db.transaction() as session:
            stored = await LoginFailureRepository(session).update_many(row_changes)
        results: dict[str, ThrottleState] = {}
        for row_key, failure in stored.items():
            assert failure is not None  # a StateChange always returns a state
            results[rows[row_key]] = _counter(failure)
        return results
