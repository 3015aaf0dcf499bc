"""Revocations and not-before times: the feed's cursor, paging and expiry."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from conftest import NOW
from tokensmith.store import Database, FeedPage, NotBefore, Repositories, RevokedToken

pytestmark = pytest.mark.anyio


async def feed(db: Database, after: int, limit: int = 100, now: int = NOW) -> FeedPage:
    async with db.read() as session:
        return await Repositories(session).revocations.feed(after, limit, now)


async def revoke(db: Database, jti: str, expires_at: int, subject: str = "alice") -> bool:
    async with db.transaction() as session:
        return await Repositories(session).revocations.add(jti, subject, expires_at, NOW)


async def not_before(db: Database, subject: str, at: int) -> int:
    async with db.transaction() as session:
        return await Repositories(session).revocations.set_not_before(subject, at)


async def test_add_and_is_revoked(db: Database) -> None:
    assert await revoke(db, "jti-1", NOW + 60)
    assert not await revoke(db, "jti-1", NOW + 90)  # already revoked: unchanged
    async with db.read() as session:
        revocations = Repositories(session).revocations
        assert await revocations.is_revoked("jti-1")
        assert not await revocations.is_revoked("jti-2")
    page = await feed(db, 0)
    assert page.revoked == [RevokedToken(1, "jti-1", "alice", NOW + 60, NOW)]


async def test_feed_pages_through_both_kinds_in_cursor_order(db: Database) -> None:
    await revoke(db, "a", NOW + 600)  # 1
    await not_before(db, "bob", NOW)  # 2
    await revoke(db, "b", NOW + 600)  # 3
    await revoke(db, "c", NOW + 600)  # 4
    await not_before(db, "carol", NOW)  # 5
    pages: list[FeedPage] = []
    cursor = 0
    while True:
        page = await feed(db, cursor, limit=2)
        if not page.revoked and not page.not_before:
            assert page.next_cursor == cursor
            break
        pages.append(page)
        assert page.next_cursor > cursor
        cursor = page.next_cursor
    assert [([r.jti for r in p.revoked], [n.subject for n in p.not_before]) for p in pages] == [
        (["a"], ["bob"]),
        (["b", "c"], []),
        ([], ["carol"]),
    ]
    assert [p.next_cursor for p in pages] == [2, 4, 5]


async def test_a_feed_page_is_one_statement(db: Database) -> None:
    # One snapshot whatever the isolation level: with a statement per table, PostgreSQL's
    # READ COMMITTED could show an entry committed in between to one and not the other,
    # and a cursor past it would skip it for good.
    await revoke(db, "a", NOW + 600)
    await not_before(db, "bob", NOW)
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        page = await feed(db, 0)
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)
    assert [r.jti for r in page.revoked] == ["a"] and [n.subject for n in page.not_before] == [
        "bob"
    ]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1


async def test_feed_leaves_out_expired_revocations(db: Database) -> None:
    await revoke(db, "short", NOW + 10)
    await revoke(db, "long", NOW + 1000)
    assert [r.jti for r in (await feed(db, 0, now=NOW + 9)).revoked] == ["short", "long"]
    page = await feed(db, 0, now=NOW + 10)
    assert [r.jti for r in page.revoked] == ["long"]
    assert page.next_cursor == 2


async def test_not_before_only_moves_forward_and_reappears_in_the_feed(db: Database) -> None:
    assert await not_before(db, "alice", NOW) == NOW
    cursor = (await feed(db, 0)).next_cursor
    assert await not_before(db, "alice", NOW - 50) == NOW  # earlier: ignored
    assert (await feed(db, cursor)).not_before == []
    assert await not_before(db, "alice", NOW + 50) == NOW + 50
    page = await feed(db, cursor)
    assert [(n.subject, n.not_before) for n in page.not_before] == [("alice", NOW + 50)]
    async with db.read() as session:
        revocations = Repositories(session).revocations
        assert await revocations.get_not_before("alice") == NOW + 50
        assert await revocations.get_not_before("bob") is None


async def test_cursor_numbers_are_never_reused_after_pruning(db: Database) -> None:
    await revoke(db, "a", NOW + 10)
    await revoke(db, "b", NOW + 10)
    cursor = (await feed(db, 0)).next_cursor
    async with db.transaction() as session:
        assert await Repositories(session).revocations.prune(NOW + 10) == 2
    await revoke(db, "c", NOW + 1000)
    page = await feed(db, cursor)
    # A verifier that read up to `cursor` before the prune still sees the new entry.
    assert [(r.seq, r.jti) for r in page.revoked] == [(3, "c")]


async def test_prune_not_before_times(db: Database) -> None:
    await not_before(db, "alice", NOW)
    await not_before(db, "bob", NOW + 100)
    async with db.transaction() as session:
        revocations = Repositories(session).revocations
        assert await revocations.prune(NOW + 5000) == 0  # kept unless asked
        assert await revocations.prune(NOW + 5000, not_before_until=NOW + 99) == 1
    assert [n.subject for n in (await feed(db, 0)).not_before] == ["bob"]


async def test_feed_arguments_are_checked(db: Database) -> None:
    async with db.read() as session:
        revocations = Repositories(session).revocations
        with pytest.raises(ValueError):
            await revocations.feed(-1, 10, NOW)
        with pytest.raises(ValueError):
            await revocations.feed(0, 0, NOW)
        with pytest.raises(TypeError):
            await revocations.feed("0", 10, NOW)  # type: ignore[arg-type]


async def test_not_before_entries_carry_their_cursor(db: Database) -> None:
    await revoke(db, "a", NOW + 10)
    await not_before(db, "alice", NOW)
    assert (await feed(db, 0)).not_before == [NotBefore(2, "alice", NOW)]
