"""Refresh tokens, stored as SHA-256 hashes, grouped in families (one login each).

A refresh token is 256 random bits, so a plain SHA-256 is enough: nothing can
be guessed from the hash, and a lookup stays one indexed equality. Rotation is
``add`` the successor, then ``mark_used`` the presented token; ``mark_used``
is conditional (only a token not used yet), so of two concurrent rotations of
one token exactly one wins and the other rolls back.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, not_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import check_count, check_name, check_time, inserted_id, rowcount
from .errors import ConcurrentChange
from .models import RefreshTokenRow, table_of

__all__ = ["AccessTokenRef", "RefreshToken", "RefreshTokenRepository", "hash_token"]

_tokens = table_of(RefreshTokenRow)
_HASH = re.compile(r"[0-9a-f]{64}")

# The rotation's statements, built once: building and caching a statement per call was
# most of a refresh grant's Python (BENCHMARKS.md, fifth session). Values are bound
# per execution.
_INSERT = insert(_tokens)
_BY_ID = select(_tokens).where(_tokens.c.id == bindparam("token_id"))
_BY_HASH = select(_tokens).where(_tokens.c.token_hash == bindparam("token_hash"))
_MARK_USED = (
    update(_tokens)
    .where(
        _tokens.c.id == bindparam("token_id"),
        _tokens.c.used_at.is_(None),
        _tokens.c.revoked_at.is_(None),
    )
    .values(used_at=bindparam("now"), replaced_by=bindparam("replaced_by"))
)


def hash_token(token: str) -> str:
    """What is stored for a refresh token: lowercase hex SHA-256 of its UTF-8 text."""
    if not isinstance(token, str):
        raise TypeError("token must be a str")
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_hash(value: object) -> str:
    # Refusing anything but a digest keeps a token in clear out of the column.
    if type(value) is not str or not _HASH.fullmatch(value):
        raise ValueError("token_hash must be hash_token() output (64 lowercase hex digits)")
    return value


@dataclass(frozen=True, slots=True)
class RefreshToken:
    id: int
    token_hash: str
    family_id: str
    user_id: int
    client_id: str
    scope: str
    issued_at: int
    expires_at: int  # idle expiry of this token
    family_expires_at: int  # absolute expiry of the login
    used_at: int | None
    replaced_by: int | None
    revoked_at: int | None
    access_jti: str | None
    access_expires_at: int | None
    access_scope: str | None = None  # None: written before revision 0003

    def expired(self, now: int) -> bool:
        return now >= min(self.expires_at, self.family_expires_at)


@dataclass(frozen=True, slots=True)
class AccessTokenRef:
    """An access token issued with a refresh token: what revoking its family denylists."""

    jti: str
    expires_at: int


def _token(row: Any) -> RefreshToken:
    return RefreshToken(**{column.name: getattr(row, column.name) for column in _tokens.c})


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        *,
        token_hash: str,
        family_id: str,
        user_id: int,
        client_id: str,
        scope: str,
        issued_at: int,
        expires_at: int,
        family_expires_at: int,
        access_jti: str | None = None,
        access_expires_at: int | None = None,
        access_scope: str | None = None,
    ) -> RefreshToken:
        for name, value in (
            ("issued_at", issued_at),
            ("expires_at", expires_at),
            ("family_expires_at", family_expires_at),
        ):
            check_time(name, value)
        check_time("access_expires_at", access_expires_at, optional=True)
        if (access_jti is None) != (access_expires_at is None):
            raise ValueError("access_jti and access_expires_at go together")
        if type(scope) is not str:
            raise TypeError("scope must be a str")
        if access_scope is not None and type(access_scope) is not str:
            raise TypeError("access_scope must be a str")
        if access_scope is not None and access_jti is None:
            raise ValueError("access_scope goes with access_jti")
        values: dict[str, Any] = {
            "token_hash": _check_hash(token_hash),
            "family_id": check_name("family_id", family_id),
            # add() returns these values as the row: each is checked, none coerced.
            "user_id": check_count("user_id", user_id, minimum=1),
            "client_id": check_name("client_id", client_id),
            "scope": scope,
            "issued_at": issued_at,
            "expires_at": expires_at,
            "family_expires_at": family_expires_at,
            "access_jti": None if access_jti is None else check_name("access_jti", access_jti),
            "access_expires_at": access_expires_at,
            "access_scope": access_scope,
        }
        try:
            result = await self.session.execute(_INSERT, values)
        except IntegrityError as exc:
            # The hash is unique and successors are derived, so a concurrent rotation of
            # the same token committed first (READ COMMITTED lets both read it unused).
            # Both SQLite's and PostgreSQL's messages name the column or its index.
            # No savepoint: the caller's transaction is over and rolls back.
            if "token_hash" not in str(exc.orig):
                raise
            raise ConcurrentChange("a refresh token with this hash exists") from None
        # The row is what was inserted: nothing in it is generated but its id.
        return RefreshToken(
            id=inserted_id(result), used_at=None, replaced_by=None, revoked_at=None, **values
        )

    async def get(self, token_id: int) -> RefreshToken | None:
        row = (await self.session.execute(_BY_ID, {"token_id": token_id})).first()
        return None if row is None else _token(row)

    async def get_by_hash(self, token_hash: str) -> RefreshToken | None:
        query = {"token_hash": _check_hash(token_hash)}
        row = (await self.session.execute(_BY_HASH, query)).first()
        return None if row is None else _token(row)

    async def mark_used(self, token_id: int, now: int, replaced_by: int | None) -> bool:
        """Mark a token used, naming its successor; True only for the call that did it.

        Conditional on ``used_at IS NULL`` and not revoked: of concurrent
        rotations of one token exactly one gets True (the others must roll
        back; a repeat inside the grace window reads ``replaced_by`` instead).
        """
        check_time("now", now)
        values = {"token_id": token_id, "now": now, "replaced_by": replaced_by}
        return rowcount(await self.session.execute(_MARK_USED, values)) == 1

    async def revoke_family(
        self, family_id: str, now: int, *, leeway: int = 0
    ) -> list[AccessTokenRef]:
        """Revoke every token of a login; returns the access tokens issued with them that
        a verifier still accepts (``exp`` + ``leeway`` after ``now``).

        Only tokens not revoked before count, so revoking twice returns nothing
        the second time. The caller denylists the returned access tokens.
        """
        return await self._revoke(_tokens.c.family_id == family_id, now, leeway)

    async def revoke_user(self, user_id: int, now: int, *, leeway: int = 0) -> list[AccessTokenRef]:
        """Revoke every refresh token of a user (log out everywhere), as ``revoke_family``."""
        return await self._revoke(_tokens.c.user_id == user_id, now, leeway)

    async def _revoke(self, condition: Any, now: int, leeway: int) -> list[AccessTokenRef]:
        check_time("now", now)
        check_count("leeway", leeway)
        # One statement (UPDATE ... RETURNING) so a token committed concurrently is
        # either revoked and reported, or neither.
        statement = (
            update(_tokens)
            .where(condition, _tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(_tokens.c.id, _tokens.c.access_jti, _tokens.c.access_expires_at)
        )
        rows = sorted(await self.session.execute(statement), key=lambda row: row.id)
        return [
            AccessTokenRef(row.access_jti, row.access_expires_at)
            for row in rows
            if row.access_jti is not None and row.access_expires_at + leeway > now
        ]

    async def prune(self, now: int, *, leeway: int = 0) -> int:
        """Delete the tokens nothing needs any more; returns how many.

        Expiry alone is not enough. A token stays while the access token issued with it
        is accepted (``exp`` + ``leeway``), since revoking its family must denylist that
        token; and a used one stays while its family lives, since presenting it again is
        reuse, detected from its row (without it, a replay would be a quiet
        ``invalid_grant`` and the family would live on).
        """
        check_time("now", now)
        check_count("leeway", leeway)
        columns = _tokens.c
        presentable = and_(columns.expires_at > now, columns.family_expires_at > now)
        access_accepted = and_(
            columns.access_expires_at.is_not(None), columns.access_expires_at > now - leeway
        )
        guards_family = and_(
            columns.used_at.is_not(None),
            columns.revoked_at.is_(None),
            columns.family_expires_at > now,
        )
        statement = delete(_tokens).where(not_(or_(presentable, access_accepted, guards_family)))
        return rowcount(await self.session.execute(statement))
