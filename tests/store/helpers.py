"""Sample rows for the store tests."""

from __future__ import annotations

from collections.abc import Mapping

from conftest import NOW
from tokensmith.store import Client, Database, Repositories, User

# A well-formed argon2id string (of no password anyone uses): the store checks only
# the prefix. The test that looks for secrets in the file hashes a real password.
PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2g"


async def add_user(
    db: Database,
    username: str = "alice",
    *,
    roles: tuple[str, ...] = (),
    profile: Mapping[str, str] | None = None,
) -> User:
    async with db.transaction() as session:
        users = Repositories(session).users
        return await users.add(username, PASSWORD_HASH, now=NOW, roles=roles, profile=profile)


async def add_client(db: Database, client_id: str = "web") -> Client:
    async with db.transaction() as session:
        return await Repositories(session).clients.add(
            client_id,
            secret_hash=None,
            grant_types=["password", "refresh_token"],
            audiences=["api"],
            now=NOW,
        )


async def connection_threads_finished(timeout: float = 5.0) -> None:
    """Wait (bounded) until aiosqlite's worker threads have exited.

    A connection that failed to open finishes in its own thread and reports back to
    the event loop; the test's loop must still be running when it does, or the
    report lands on a closed loop as an unhandled thread exception in a later test.
    """
    import threading

    import anyio

    deadline = anyio.current_time() + timeout
    while anyio.current_time() < deadline:
        workers = [
            thread
            for thread in threading.enumerate()
            if thread.name.endswith("(_connection_worker_thread)") and thread.is_alive()
        ]
        if not workers:
            return
        await anyio.sleep(0.01)
