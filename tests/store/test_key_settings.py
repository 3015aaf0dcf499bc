"""The key-ring settings a server start records, for key commands to compare with."""

from __future__ import annotations

import pytest

from tokensmith.store import Database, KeySettings, KeySettingsRepository

pytestmark = pytest.mark.anyio

DAY = 86_400


async def _stored(db: Database) -> KeySettings | None:
    async with db.read() as session:
        return await KeySettingsRepository(session).stored()


async def _record(db: Database, settings: KeySettings) -> None:
    async with db.transaction() as session:
        await KeySettingsRepository(session).record(settings)


async def test_nothing_before_the_first_record_then_the_last_one(db: Database) -> None:
    assert await _stored(db) is None
    first = KeySettings.of(["RS256", "ES256"], DAY, 30 * DAY)
    await _record(db, first)
    assert await _stored(db) == first
    later = KeySettings.of(["EdDSA", "HS256"], 3600, 7 * DAY)
    await _record(db, later)
    assert await _stored(db) == later
    assert later.algorithms == frozenset({"EdDSA", "HS256"})


class _RacedInsert(KeySettingsRepository):
    """As another instance starting at once: its rows appear between our update (which
    found none) and our insert, which then collides."""

    updates = 0
    missed: frozenset[str] = frozenset()

    async def _update(self, name: str, value: int) -> bool:
        self.updates += 1
        if name not in self.missed:  # the first update of each row "misses"
            self.missed |= {name}
            return False
        return await super()._update(name, value)


async def test_a_row_another_start_inserted_first_is_updated(db: Database) -> None:
    await _record(db, KeySettings.of(["RS256"], DAY, 30 * DAY))  # the other start's rows
    settings = KeySettings.of(["ES256"], 3600, 7 * DAY)
    async with db.transaction() as session:
        repository = _RacedInsert(session)
        await repository.record(settings)
    assert repository.updates == 6  # a missed update, a collision, an update, per row
    assert await _stored(db) == settings


@pytest.mark.parametrize(
    ("algorithms", "prepublish", "period"),
    [([], DAY, DAY), (["none"], DAY, DAY), (["RS256"], 0, DAY), (["RS256"], DAY, -1)],
)
def test_bad_settings_are_refused(algorithms: list[str], prepublish: int, period: int) -> None:
    with pytest.raises((TypeError, ValueError)):
        KeySettings.of(algorithms, prepublish, period)
