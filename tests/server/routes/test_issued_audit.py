"""client_credentials tokens over HTTP: their ``token_issued`` rows are batched while the app
runs, and none is lost when the lifespan ends; the client row cache serves the secret check."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from tokensmith.store import AuditEvent, Database, Repositories, sqlite_url

from .conftest import AUDIENCE, basic, running

pytestmark = pytest.mark.anyio


async def test_issued_rows_are_batched_and_flushed_when_the_app_stops(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        writer = server.ctx.audit_writer
        with anyio.fail_after(5):
            while not writer.running:
                await anyio.sleep(0.01)
        writer.interval = 3600  # from the next tick on: only the lifespan's end writes
        await anyio.sleep(0.3)
        new = await server.ctx.clients.create(
            "svc", grant_types=["client_credentials"], scopes=["jobs"], audiences=[AUDIENCE]
        )
        assert new.secret is not None
        for _ in range(3):
            response = await server.http.post(
                "/oauth/token",
                data={"grant_type": "client_credentials"},
                headers=basic("svc", new.secret),
            )
            assert response.status_code == 200, response.text
        assert writer.pending == 3
        assert len(server.ctx.clients.cache) == 1  # the row was read once, then cached

    db = Database.open(sqlite_url(tmp_path))
    try:
        async with db.read() as session:
            entries = await Repositories(session).audit.page(limit=100)
    finally:
        await db.dispose()
    issued = [e for e in entries if e.event is AuditEvent.TOKEN_ISSUED]
    assert len(issued) == 3
    assert all(
        e.subject == "svc" and e.detail["grant_type"] == "client_credentials" for e in issued
    )
    assert len({e.detail["jti"] for e in issued}) == 3
