"""Signing keys: the rows behind tokensmith.keys.KeyRecord, plus public JWK and sealed private key.

``apply`` carries out a plan from tokensmith.keys (``plan``, ``rotate_now``,
``revoke``) inside the caller's transaction, with the reference semantics of
``tokensmith.keys.apply``. Every state change is conditional on the state the
plan was made from (activate only a ``next`` key, retire only the ``current``
one...), and the partial unique indexes allow one ``current`` and one ``next``
key per algorithm. When another instance got there first, a statement matches
no row or hits an index, and ``ConcurrentChange`` tells the caller to roll
back, re-read and plan again: two instances never both rotate a ring.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tokensmith.jose.jwkset import PRIVATE_MEMBERS
from tokensmith.keys import (
    Action,
    Activate,
    CreateKey,
    Delete,
    KeyRecord,
    KeyState,
    Retire,
    Revoke,
    UnknownKey,
    is_published_alg,
)

from ._checks import check_name, check_time, rowcount
from .errors import ConcurrentChange
from .models import SigningKeyRow, table_of

__all__ = ["KeyRepository", "MakeKey", "NewKey", "StoredKey"]

_keys = table_of(SigningKeyRow)


@dataclass(frozen=True, slots=True)
class NewKey:
    """A generated key, ready to store: the server makes it (``MakeKey``), the store keeps it."""

    kid: str
    public_jwk: Mapping[str, Any] | None  # None for HMAC keys
    sealed_private: bytes = field(repr=False)  # tokensmith.keys.seal_jwk output

    def __post_init__(self) -> None:
        check_name("kid", self.kid)
        if not isinstance(self.sealed_private, bytes) or not self.sealed_private:
            raise TypeError("sealed_private must be non-empty bytes")
        if self.public_jwk is not None:
            if not isinstance(self.public_jwk, Mapping):
                raise TypeError("public_jwk must be a mapping or None")
            if PRIVATE_MEMBERS & set(self.public_jwk):  # none may reach the public column
                raise ValueError("public_jwk has private key members")


MakeKey = Callable[[str], NewKey | Awaitable[NewKey]]
"""Generates and seals a key for an algorithm; may be async (to generate in a thread)."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key's record and public JWK; the sealed private key is loaded only to sign."""

    record: KeyRecord
    public_jwk: Mapping[str, Any] | None


def _record(row: Any) -> KeyRecord:
    return KeyRecord(
        kid=row.kid,
        alg=row.alg,
        state=KeyState(row.state),
        created_at=row.created_at,
        activated_at=row.activated_at,
        retired_at=row.retired_at,
        revoked_at=row.revoked_at,
    )


_RECORD_COLUMNS = (
    _keys.c.kid,
    _keys.c.alg,
    _keys.c.state,
    _keys.c.created_at,
    _keys.c.activated_at,
    _keys.c.retired_at,
    _keys.c.revoked_at,
)


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def list_records(self) -> list[KeyRecord]:
        """Every key's record, ordered by kid: the input of tokensmith.keys.plan."""
        query = select(*_RECORD_COLUMNS).order_by(_keys.c.kid)
        return [_record(row) for row in await self.session.execute(query)]

    async def list_keys(self) -> list[StoredKey]:
        """Records with their public JWKs (what the JWKS is built from), ordered by kid."""
        query = select(*_RECORD_COLUMNS, _keys.c.public_jwk).order_by(_keys.c.kid)
        return [
            StoredKey(_record(row), None if row.public_jwk is None else json.loads(row.public_jwk))
            for row in await self.session.execute(query)
        ]

    async def load_private(self, kid: str) -> bytes:
        """The sealed private key of a live key; ``UnknownKey`` if deleted or revoked."""
        query = select(_keys.c.sealed_private).where(
            _keys.c.kid == kid, _keys.c.state != KeyState.REVOKED.value
        )
        blob = (await self.session.execute(query)).scalar_one_or_none()
        if blob is None:
            raise UnknownKey(f"no live key has kid {kid!r}")
        return bytes(blob)

    async def apply(
        self, actions: Iterable[Action], now: int, make_key: MakeKey
    ) -> list[KeyRecord]:
        """Apply a plan's actions in order; returns the records of the keys it created.

        Keys are generated before the first statement: RSA generation takes tens
        of milliseconds, and on SQLite a transaction that has written holds the
        database's one write lock.
        """
        check_time("now", now)
        planned = list(actions)
        made: dict[int, NewKey] = {}
        for index, action in enumerate(planned):
            if isinstance(action, CreateKey):
                made[index] = await _make(make_key, action.alg)
        created: list[KeyRecord] = []
        for index, action in enumerate(planned):
            match action:
                case CreateKey(alg=alg, state=state):
                    created.append(await self._create(made[index], alg, state, now))
                case Activate(kid=kid):
                    await self._move(kid, (KeyState.NEXT,), KeyState.CURRENT, activated_at=now)
                case Retire(kid=kid):
                    await self._move(kid, (KeyState.CURRENT,), KeyState.RETIRED, retired_at=now)
                case Revoke(kid=kid):
                    live = (KeyState.NEXT, KeyState.CURRENT, KeyState.RETIRED)
                    await self._move(kid, live, KeyState.REVOKED, revoked_at=now)
                case Delete(kid=kid):
                    # Never the current key: the ring would have no signer.
                    gone = (KeyState.NEXT, KeyState.RETIRED, KeyState.REVOKED)
                    statement = delete(_keys).where(
                        _keys.c.kid == kid, _keys.c.state.in_([s.value for s in gone])
                    )
                    if rowcount(await self.session.execute(statement)) != 1:
                        raise ConcurrentChange(f"key {kid!r} is no longer deletable")
                case _:
                    raise TypeError(f"not a lifecycle action: {type(action).__name__}")
        return created

    async def _create(self, new: NewKey, alg: str, state: KeyState, now: int) -> KeyRecord:
        if is_published_alg(alg) == (new.public_jwk is None):
            raise ValueError("an asymmetric key needs its public JWK; an HMAC key has none")
        exists = select(_keys.c.kid).where(_keys.c.kid == new.kid)
        if (await self.session.execute(exists)).first() is not None:
            # A thumbprint kid collides only if make_key returned the same key twice.
            raise ValueError(f"make_key returned an existing kid {new.kid!r}")
        record = KeyRecord(
            new.kid,
            alg,
            state,
            now,
            activated_at=now if state is KeyState.CURRENT else None,
        )
        public = None
        if new.public_jwk is not None:
            public = json.dumps(dict(new.public_jwk), separators=(",", ":"), sort_keys=True)
        values = {
            "kid": record.kid,
            "alg": record.alg,
            "state": record.state.value,
            "created_at": now,
            "activated_at": record.activated_at,
            "public_jwk": public,
            "sealed_private": new.sealed_private,
        }
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(_keys).values(**values))
        except IntegrityError:
            # The kid is new, so the one-current / one-next index refused it.
            raise ConcurrentChange(f"the {alg} ring already has a {state} key") from None
        return record

    async def _move(
        self, kid: str, expected: tuple[KeyState, ...], to: KeyState, **times: int
    ) -> None:
        statement = (
            update(_keys)
            .where(_keys.c.kid == kid, _keys.c.state.in_([s.value for s in expected]))
            .values(state=to.value, **times)
        )
        try:
            async with self.session.begin_nested():
                changed = rowcount(await self.session.execute(statement))
        except IntegrityError:
            raise ConcurrentChange(f"the ring of key {kid!r} already has a {to} key") from None
        if changed != 1:
            raise ConcurrentChange(f"key {kid!r} is no longer {'/'.join(expected)}")


async def _make(make_key: MakeKey, alg: str) -> NewKey:
    made = make_key(alg)
    if inspect.isawaitable(made):
        made = await made
    if not isinstance(made, NewKey):
        raise TypeError("make_key must return a NewKey")
    return made
