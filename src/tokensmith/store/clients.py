"""OAuth clients: id, hashed secret (None for a public client), what they may ask for."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import check_count, check_flag, check_name, check_names, check_time, rowcount
from .errors import ClientIdTaken, UnknownClient
from .models import ClientRow, table_of

__all__ = ["UNCHANGED", "Client", "ClientRepository", "check_client_id"]

_clients = table_of(ClientRow)


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Final = _Unchanged()
"""Default of ``ClientRepository.update`` arguments: leave the column as it is."""


def check_client_id(client_id: object) -> str:
    """RFC 6749 appendix A.1: printable ASCII (VSCHAR), here 1 to 255 characters."""
    value = check_name("client_id", client_id)
    if not all(" " <= char <= "~" for char in value):
        raise ValueError("client_id must be printable ASCII")
    return value


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    secret_hash: str | None = field(repr=False)
    grant_types: tuple[str, ...]
    scopes: tuple[str, ...]
    audiences: tuple[str, ...]
    access_token_lifetime: int | None
    disabled: bool
    created_at: int
    updated_at: int

    @property
    def is_public(self) -> bool:
        return self.secret_hash is None


def _client(row: Any) -> Client:
    return Client(
        client_id=row.client_id,
        secret_hash=row.secret_hash,
        grant_types=tuple(row.grant_types),
        scopes=tuple(row.scopes),
        audiences=tuple(row.audiences),
        access_token_lifetime=row.access_token_lifetime,
        disabled=row.disabled,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_secret_hash(value: object) -> str | None:
    # The hashing scheme is the server's choice (client secrets are random, so a
    # fast hash fits); the store only keeps the string.
    return None if value is None else check_name("secret_hash", value)


# The column is an INTEGER: 32 bits on PostgreSQL, and SQLite overflows past 64 bits.
_MAX_LIFETIME = 2**31 - 1


def _check_lifetime(value: object) -> int | None:
    if value is None:
        return None
    lifetime = check_count("access_token_lifetime", value, minimum=1)
    if lifetime > _MAX_LIFETIME:
        raise ValueError(f"access_token_lifetime must be at most {_MAX_LIFETIME}")
    return lifetime


class ClientRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        client_id: str,
        *,
        secret_hash: str | None,
        grant_types: Iterable[str],
        scopes: Iterable[str] = (),
        audiences: Iterable[str] = (),
        access_token_lifetime: int | None = None,
        disabled: bool = False,
        now: int,
    ) -> Client:
        """Register a client; ``ClientIdTaken`` if the id exists."""
        check_time("now", now)
        values = {
            "client_id": check_client_id(client_id),
            "secret_hash": _check_secret_hash(secret_hash),
            "grant_types": check_names("grant_types", grant_types),
            "scopes": check_names("scopes", scopes),
            "audiences": check_names("audiences", audiences),
            "access_token_lifetime": _check_lifetime(access_token_lifetime),
            "disabled": check_flag("disabled", disabled),
            "created_at": now,
            "updated_at": now,
        }
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(_clients).values(**values))
        except IntegrityError:
            raise ClientIdTaken() from None
        return await self._require(client_id)

    async def get(self, client_id: str, *, for_update: bool = False) -> Client | None:
        """The client, or None; ``for_update`` locks its row until the transaction ends
        (PostgreSQL; a SQLite write transaction already excludes other writers)."""
        query = select(_clients).where(_clients.c.client_id == client_id)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return None if row is None else _client(row)

    async def any_registered(self) -> bool:
        """Whether any client exists: without one, no token was ever issued here."""
        query = select(_clients.c.client_id).limit(1)
        return (await self.session.execute(query)).first() is not None

    async def list(self) -> builtins.list[Client]:
        query = select(_clients).order_by(_clients.c.client_id)
        return [_client(row) for row in await self.session.execute(query)]

    async def update(
        self,
        client_id: str,
        *,
        now: int,
        secret_hash: str | _Unchanged | None = UNCHANGED,
        grant_types: Iterable[str] | _Unchanged = UNCHANGED,
        scopes: Iterable[str] | _Unchanged = UNCHANGED,
        audiences: Iterable[str] | _Unchanged = UNCHANGED,
        access_token_lifetime: int | _Unchanged | None = UNCHANGED,
        disabled: bool | _Unchanged = UNCHANGED,
    ) -> Client:
        """Change the given fields; ``UnknownClient`` if there is no such client."""
        check_time("now", now)
        values: dict[str, Any] = {"updated_at": now}
        if not isinstance(secret_hash, _Unchanged):
            values["secret_hash"] = _check_secret_hash(secret_hash)
        for name, names in (
            ("grant_types", grant_types),
            ("scopes", scopes),
            ("audiences", audiences),
        ):
            if not isinstance(names, _Unchanged):
                values[name] = check_names(name, names)
        if not isinstance(access_token_lifetime, _Unchanged):
            values["access_token_lifetime"] = _check_lifetime(access_token_lifetime)
        if not isinstance(disabled, _Unchanged):
            values["disabled"] = check_flag("disabled", disabled)
        statement = update(_clients).where(_clients.c.client_id == client_id).values(**values)
        if rowcount(await self.session.execute(statement)) == 0:
            raise UnknownClient()
        return await self._require(client_id)

    async def set_disabled(self, client_id: str, disabled: bool, *, now: int) -> Client:
        return await self.update(client_id, now=now, disabled=disabled)

    async def _require(self, client_id: str) -> Client:
        client = await self.get(client_id)
        if client is None:
            raise UnknownClient()
        return client
