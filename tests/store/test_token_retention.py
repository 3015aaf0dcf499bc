"""The token retention last configured, and when tokens of a longer former one expire."""

from __future__ import annotations

import pytest

from conftest import NOW
from tokensmith.store import ConcurrentChange, Database, TokenRetentionRepository

pytestmark = pytest.mark.anyio

DAY = 86_400


async def record(db: Database, retention: int, now: int) -> int:
    async with db.transaction() as session:
        return await TokenRetentionRepository(session).record(retention, now)


async def test_a_first_record_or_a_longer_retention_moves_nothing(db: Database) -> None:
    assert await record(db, 900, NOW) == 0
    assert await record(db, 900, NOW + 10) == 0
    assert await record(db, DAY, NOW + 20) == 0


async def test_a_shorter_retention_keeps_the_former_one_for_tokens_issued_until_now(
    db: Database,
) -> None:
    await record(db, DAY, NOW)
    assert await record(db, 900, NOW + 100) == NOW + 100 + DAY
    # Raised again, then lowered again later: the later bound wins, an earlier never.
    assert await record(db, DAY, NOW + 200) == NOW + 100 + DAY
    assert await record(db, 900, NOW + 300) == NOW + 300 + DAY
    assert await record(db, 60, NOW + 400) == NOW + 300 + DAY  # 900 < DAY: no later bound


@pytest.mark.parametrize(("retention", "now"), [(0, NOW), (-1, NOW), (900, -1), (True, NOW)])
async def test_bad_values_are_refused(db: Database, retention: int, now: int) -> None:
    with pytest.raises((TypeError, ValueError)):
        await record(db, retention, now)


class _StaleFirstRead(TokenRetentionRepository):
    """The repository as another instance races it: its first read misses the rows that
    instance inserted meanwhile (as PostgreSQL's, whose FOR UPDATE locks no absent row)."""

    stale_reads = 1

    async def _read(self) -> dict[str, int]:
        if self.stale_reads:
            self.stale_reads -= 1
            return {}
        return await super()._read()


async def test_an_insert_that_loses_the_race_is_made_again_on_the_other_instances_rows(
    db: Database,
) -> None:
    await record(db, DAY, NOW)  # the other instance, first
    async with db.transaction() as session:
        repository = _StaleFirstRead(session)
        # Planned from nothing, the insert collides; made again from the stored DAY,
        # the lowered retention keeps DAY for the tokens issued until now.
        assert await repository.record(900, NOW + 100) == NOW + 100 + DAY
        assert repository.stale_reads == 0
    # The transaction survived the failed insert and committed the change.
    assert await record(db, 900, NOW + 200) == NOW + 100 + DAY


async def test_a_race_lost_twice_is_a_concurrent_change(db: Database) -> None:
    await record(db, DAY, NOW)
    with pytest.raises(ConcurrentChange):
        async with db.transaction() as session:
            repository = _StaleFirstRead(session)
            repository.stale_reads = 2
            await repository.record(900, NOW + 100)
    assert await record(db, DAY, NOW + 200) == 0  # nothing of the failed change stayed


async def expire_by(db: Database, retention: int, now: int) -> int:
    async with db.read() as session:
        return await TokenRetentionRepository(session).expire_by(retention, now)


async def stored(db: Database) -> tuple[int | None, int]:
    async with db.read() as session:
        rows = await TokenRetentionRepository(session).stored()
    return rows.retention, rows.old_tokens_expire_by


async def test_expire_by_is_what_record_would_return_and_writes_nothing(db: Database) -> None:
    # Nothing recorded yet: nothing to keep, and still nothing stored after the read.
    assert await expire_by(db, 900, NOW) == 0
    assert await stored(db) == (None, 0)
    await record(db, DAY, NOW)
    # A lower retention than the stored one keeps the stored one for tokens issued
    # until now (as record would), a higher or equal one moves nothing.
    assert await expire_by(db, 900, NOW + 100) == NOW + 100 + DAY
    assert await expire_by(db, DAY, NOW + 100) == 0
    assert await expire_by(db, 2 * DAY, NOW + 100) == 0
    assert await stored(db) == (DAY, 0)  # none of those reads was noted
    # After a real lowering, the stored bound is kept, and a later read moves it on.
    assert await record(db, 900, NOW + 200) == NOW + 200 + DAY
    assert await stored(db) == (900, NOW + 200 + DAY)
    assert await expire_by(db, 60, NOW + 300) == NOW + 200 + DAY
    assert await expire_by(db, DAY, NOW + 300) == NOW + 200 + DAY
    assert await stored(db) == (900, NOW + 200 + DAY)


@pytest.mark.parametrize(("retention", "now"), [(0, NOW), (-1, NOW), (900, -1), (True, NOW)])
async def test_expire_by_refuses_bad_values(db: Database, retention: int, now: int) -> None:
    with pytest.raises((TypeError, ValueError)):
        await expire_by(db, retention, now)
