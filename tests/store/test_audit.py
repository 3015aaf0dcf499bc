"""The audit log: events, paging, retention, and no secrets in the detail."""

from __future__ import annotations

import pytest

from conftest import NOW
from tokensmith.store import AuditEvent, Database, Repositories
from tokensmith.store import audit as audit_module
from tokensmith.store.audit import audit_values

pytestmark = pytest.mark.anyio


async def record(db: Database, event: str, at: int, **kwargs: object) -> int:
    async with db.transaction() as session:
        return await Repositories(session).audit.record(event, at=at, **kwargs)  # type: ignore[arg-type]


def test_event_codes_are_the_documented_ones() -> None:
    assert {e.value for e in AuditEvent} == {
        "login_ok",
        "login_failed",
        "throttled",
        "token_issued",
        "refresh_reuse_detected",
        "token_revoked",
        "key_created",
        "key_activated",
        "key_retired",
        "key_deleted",
        "key_revoked",
        "user_created",
        "user_changed",
        "client_created",
        "client_changed",
    }


async def test_record_and_page_newest_first(db: Database) -> None:
    ids = [
        await record(db, "login_failed", NOW, subject="alice", client_address="192.0.2.1"),
        await record(db, AuditEvent.THROTTLED, NOW + 1, detail={"retry_after": 30}),
        await record(db, "key_created", NOW + 2, actor="scheduler", detail={"kid": "k1"}),
    ]
    async with db.read() as session:
        audit = Repositories(session).audit
        first = await audit.page(limit=2)
        rest = await audit.page(before_id=first[-1].id, limit=2)
        since = await audit.page(since=NOW + 1)
    assert [e.id for e in first + rest] == ids[::-1]
    assert [e.event for e in first] == [AuditEvent.KEY_CREATED, AuditEvent.THROTTLED]
    assert first[0].actor == "scheduler" and first[0].detail == {"kid": "k1"}
    assert rest[0].client_address == "192.0.2.1" and rest[0].detail == {}
    assert [e.at for e in since] == [NOW + 2, NOW + 1]


async def test_unknown_events_are_refused(db: Database) -> None:
    with pytest.raises(ValueError):
        await record(db, "coffee_made", NOW)


@pytest.mark.parametrize(
    "detail",
    [
        {"password": "hunter2"},
        {"Client_Secret": "s"},
        {"request": {"refresh_token": "rt"}},
        {"attempts": [{"token": "t"}]},
    ],
)
async def test_secrets_are_refused_in_the_detail(db: Database, detail: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="secret"):
        await record(db, "login_failed", NOW, detail=detail)
    async with db.read() as session:
        assert await Repositories(session).audit.page() == []


async def test_detail_must_be_json(db: Database) -> None:
    with pytest.raises(TypeError):
        await record(db, "login_failed", NOW, detail={"at": object()})
    with pytest.raises(ValueError):
        await record(db, "login_failed", NOW, detail={"blob": "x" * 5000})


async def test_prune_keeps_the_retention_window(db: Database) -> None:
    for offset in (0, 10, 20):
        await record(db, "login_ok", NOW + offset)
    async with db.transaction() as session:
        audit = Repositories(session).audit
        assert await audit.prune(NOW + 10) == 1
        assert [e.at for e in await audit.page()] == [NOW + 20, NOW + 10]
    # Ids keep growing after a prune (SQLite AUTOINCREMENT), so paging stays stable.
    async with db.transaction() as session:
        await Repositories(session).audit.prune(NOW + 100)
    new_id = await record(db, "login_ok", NOW + 30)
    assert new_id == 4


async def test_record_many_writes_checked_rows_in_order(db: Database) -> None:
    rows = [
        audit_values(AuditEvent.TOKEN_ISSUED, at=NOW + n, subject=f"s{n}", detail={"n": n})
        for n in range(3)
    ]
    with pytest.raises(ValueError):  # the checks run when a row is made, not when written
        audit_values(AuditEvent.TOKEN_ISSUED, at=NOW, detail={"refresh_token": "x"})
    async with db.transaction() as session:
        audit = Repositories(session).audit
        assert await audit.record_many(rows) == 3
        assert await audit.record_many([]) == 0
        with pytest.raises(TypeError):
            await audit.record_many([rows[0].as_params()])  # type: ignore[list-item]
    async with db.read() as session:
        entries = await Repositories(session).audit.page()
    assert [(e.subject, e.detail) for e in reversed(entries)] == [
        ("s0", {"n": 0}),
        ("s1", {"n": 1}),
        ("s2", {"n": 2}),
    ]
    assert entries[0].id > entries[1].id > entries[2].id


async def test_record_many_over_several_statements_keeps_every_row_and_its_order(
    db: Database,
) -> None:
    # More rows than one multi-row INSERT takes: the chunks must join up in order.
    count = 2 * audit_module._ROWS_PER_INSERT + 7
    rows = [
        audit_values(
            AuditEvent.TOKEN_ISSUED,
            at=NOW + n,
            actor="client-a" if n % 2 else None,
            subject=f"s{n}",
            client_address="192.0.2.1" if n % 3 else None,
            detail={"n": n, "scope": "a b", "text": "é\"'"},
        )
        for n in range(count)
    ]
    async with db.transaction() as session:
        assert await Repositories(session).audit.record_many(rows) == count
        await Repositories(session).audit.record(
            AuditEvent.LOGIN_OK, at=NOW, subject="one", detail={"n": -1}
        )
    async with db.read() as session:
        entries = await Repositories(session).audit.page(limit=count + 1)
    written = list(reversed(entries))
    assert [e.subject for e in written] == [f"s{n}" for n in range(count)] + ["one"]
    for n, entry in enumerate(written[:count]):
        assert entry.at == NOW + n and entry.event == "token_issued"
        assert entry.actor == ("client-a" if n % 2 else None)
        assert entry.client_address == ("192.0.2.1" if n % 3 else None)
        assert entry.detail == {"n": n, "scope": "a b", "text": "é\"'"}
    ids = [e.id for e in written]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
