"""No password or token text is stored anywhere: not in a row, not in the file, not in the WAL."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text

from conftest import NOW
from tokensmith.store import DB_FILENAME, Database, Repositories, hash_token

from .helpers import add_client

pytestmark = pytest.mark.anyio

PASSWORD = "Tr0ub4dor&3-unique-password-text"
REFRESH_TOKEN = "rt_9f3c1a7e5b2d4c6e8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d"
# Fast parameters: the cost is irrelevant here, the stored form is what is checked.
HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


def stored_bytes(data_dir: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(data_dir.glob(f"{DB_FILENAME}*")))


async def all_text(db: Database) -> str:
    """Every value of every row, as text."""
    values: list[str] = []
    async with db.engine.connect() as connection:
        tables = await connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
        for (table,) in tables.all():
            for row in await connection.execute(text(f'SELECT * FROM "{table}"')):
                values.extend(str(value) for value in row)
    return "\n".join(values)


async def test_only_hashes_reach_the_database(db: Database, tmp_path: Path) -> None:
    await add_client(db, "web")
    password_hash = HASHER.hash(PASSWORD)
    async with db.transaction() as session:
        repos = Repositories(session)
        user = await repos.users.add("alice", password_hash, now=NOW)
        await repos.refresh_tokens.add(
            token_hash=hash_token(REFRESH_TOKEN),
            family_id="fam",
            user_id=user.id,
            client_id="web",
            scope="openid",
            issued_at=NOW,
            expires_at=NOW + 60,
            family_expires_at=NOW + 60,
            access_jti="jti-1",
            access_expires_at=NOW + 60,
        )
        await repos.audit.record("login_ok", at=NOW, subject="alice", detail={"client": "web"})
    rows = await all_text(db)
    raw = stored_bytes(tmp_path)
    # The checks can see what is stored: the hashes are there...
    assert password_hash in rows and hash_token(REFRESH_TOKEN) in rows
    assert hash_token(REFRESH_TOKEN).encode() in raw
    # ...and the secrets are not, in any row or any byte of the files.
    for secret in (PASSWORD, REFRESH_TOKEN):
        assert secret not in rows
        assert secret.encode() not in raw
    assert HASHER.verify(password_hash, PASSWORD)


async def test_the_store_refuses_clear_text_where_a_hash_belongs(db: Database) -> None:
    await add_client(db, "web")
    async with db.transaction() as session:
        repos = Repositories(session)
        with pytest.raises(ValueError):
            await repos.users.add("alice", PASSWORD, now=NOW)
        user = await repos.users.add("alice", HASHER.hash(PASSWORD), now=NOW)
        with pytest.raises(ValueError):
            await repos.refresh_tokens.add(
                token_hash=REFRESH_TOKEN,
                family_id="fam",
                user_id=user.id,
                client_id="web",
                scope="",
                issued_at=NOW,
                expires_at=NOW + 60,
                family_expires_at=NOW + 60,
            )
