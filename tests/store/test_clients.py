"""Clients: unique ids, public or confidential, partial updates."""

from __future__ import annotations

import pytest

from conftest import NOW
from tokensmith.store import ClientIdTaken, Database, Repositories, UnknownClient

from .helpers import add_client

pytestmark = pytest.mark.anyio


async def test_add_get_and_list(db: Database) -> None:
    async with db.transaction() as session:
        clients = Repositories(session).clients
        service = await clients.add(
            "svc",
            secret_hash="sha256:abc",
            grant_types=["client_credentials"],
            scopes=["write", "read", "read"],
            audiences=["api"],
            access_token_lifetime=300,
            now=NOW,
        )
    web = await add_client(db, "web")
    assert service.scopes == ("read", "write")
    assert not service.is_public and web.is_public
    assert service.access_token_lifetime == 300 and web.access_token_lifetime is None
    assert "sha256:abc" not in repr(service)
    async with db.read() as session:
        clients = Repositories(session).clients
        assert await clients.get("svc") == service
        assert await clients.get("SVC") is None  # client ids are exact, not folded
        assert [c.client_id for c in await clients.list()] == ["svc", "web"]


async def test_duplicate_client_id(db: Database) -> None:
    await add_client(db, "web")
    with pytest.raises(ClientIdTaken):
        await add_client(db, "web")


@pytest.mark.parametrize("client_id", ["", "caf\u00e9", "tab\there", "x" * 256])
async def test_client_id_is_printable_ascii(db: Database, client_id: str) -> None:
    with pytest.raises(ValueError):
        await add_client(db, client_id)


async def test_update_changes_only_what_is_given(db: Database) -> None:
    before = await add_client(db, "web")
    async with db.transaction() as session:
        clients = Repositories(session).clients
        after = await clients.update(
            "web", now=NOW + 5, scopes=["profile"], access_token_lifetime=600
        )
        assert after.scopes == ("profile",)
        assert after.access_token_lifetime == 600
        assert after.grant_types == before.grant_types
        assert after.audiences == before.audiences
        assert after.updated_at == NOW + 5 and after.created_at == NOW
        # None is a value (back to the server default; a public client), not "unchanged".
        reset = await clients.update("web", now=NOW + 6, access_token_lifetime=None)
        assert reset.access_token_lifetime is None
        confidential = await clients.update("web", now=NOW + 7, secret_hash="h")
        assert not confidential.is_public
        disabled = await clients.set_disabled("web", True, now=NOW + 8)
        assert disabled.disabled and disabled.secret_hash == "h"


async def test_update_a_missing_client(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(UnknownClient):
            await Repositories(session).clients.update("ghost", now=NOW, disabled=True)


async def test_lifetime_must_be_positive(db: Database) -> None:
    await add_client(db, "web")
    async with db.transaction() as session:
        with pytest.raises(ValueError):
            await Repositories(session).clients.update("web", now=NOW, access_token_lifetime=0)
