"""Users: unique normalized usernames, argon2 password hashes, roles, profile claims."""

from __future__ import annotations

import builtins
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import (
    check_count,
    check_flag,
    check_name,
    check_names,
    check_time,
    inserted_id,
    rowcount,
)
from .errors import InvalidUsername, UnknownUser, UsernameTaken
from .models import MAX_USERNAME, UserRow, table_of

__all__ = ["PROFILE_FIELDS", "User", "UserRepository", "normalize_username"]

PROFILE_FIELDS = frozenset({"name", "email"})
MAX_ROLE = 64
MAX_PROFILE_VALUE = 320  # the longest valid email address

_users = table_of(UserRow)
# Every login and refresh reads a user: the lookups are built once (refresh_tokens.py).
_USER_BY_ID = select(_users).where(_users.c.id == bindparam("user_id"))
# SQLite leaves FOR UPDATE out: its write transaction (BEGIN IMMEDIATE) already excludes writers.
_USER_BY_ID_FOR_UPDATE = _USER_BY_ID.with_for_update()
_USER_BY_NAME = select(_users).where(_users.c.username == bindparam("username"))


def normalize_username(username: str) -> str:
    """The stored form of a username: NFKC, case-folded, NFKC again.

    "Alice", "ALICE" and "Alice" in fullwidth letters (U+FF21...) are one name. Case folding can
    produce text that is not NFKC (the casefold of some characters decomposes),
    hence the second pass. Refused with ``InvalidUsername``: empty, longer than
    150 characters once normalized, leading or trailing whitespace, control and
    format characters (invisible ones such as U+200B or U+202E let two names
    that look identical differ), line and paragraph separators.
    """
    if not isinstance(username, str):
        raise TypeError("username must be a str")
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())
    if not folded:
        raise InvalidUsername("a username must not be empty")
    if len(folded) > MAX_USERNAME:
        raise InvalidUsername(f"a username must be at most {MAX_USERNAME} characters")
    for char in folded:
        # Cc control, Cf format, Cs surrogate, Co private use, Cn unassigned; Zl, Zp.
        category = unicodedata.category(char)
        if category[0] == "C" or category in ("Zl", "Zp"):
            raise InvalidUsername("a username must not contain control or invisible characters")
    if folded != folded.strip():
        raise InvalidUsername("a username must not start or end with whitespace")
    return folded


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    # Never shown in a repr: it ends up in logs and tracebacks.
    password_hash: str = field(repr=False)
    roles: tuple[str, ...]
    disabled: bool
    profile: Mapping[str, str]
    created_at: int
    updated_at: int


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        roles=tuple(row.roles),
        disabled=row.disabled,
        profile=dict(row.profile),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _check_password_hash(value: object) -> str:
    # A guard against storing a password instead of its hash: only argon2 PHC strings.
    check_name("password_hash", value)
    assert isinstance(value, str)
    if not value.startswith("$argon2"):
        raise ValueError("password_hash must be an argon2 hash string")
    return value


def _check_roles(roles: Iterable[str]) -> list[str]:
    return check_names("roles", roles, max_length=MAX_ROLE)


def _check_profile(profile: Mapping[str, str] | None) -> dict[str, str]:
    if profile is None:
        return {}
    if not isinstance(profile, Mapping):
        raise TypeError("profile must be a mapping")
    unknown = set(profile) - PROFILE_FIELDS
    if unknown:
        raise ValueError(f"unknown profile fields: {sorted(map(str, unknown))}")
    checked = {
        key: _check_display_text(
            f"profile {key}", check_name(f"profile {key}", value, max_length=MAX_PROFILE_VALUE)
        )
        for key, value in sorted(profile.items())
    }
    if "email" in checked:
        _check_email(checked["email"])
    return checked


# Unicode's Bidi_Control characters (embeddings, overrides, isolates and the three
# marks): they reorder how the text around them is shown, so "moc.elpmaxe@" can
# display as a trusted address.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _check_display_text(name: str, value: str) -> str:
    """Profile values reach every token and every listing: no control characters, line
    breaks or bidirectional controls, no leading or trailing whitespace.

    Other format characters stay allowed, unlike in usernames: the zero-width joiner and
    non-joiner are part of how some scripts write names (Persian, Malayalam).
    """
    if value != value.strip():
        raise ValueError(f"{name} must not start or end with whitespace")
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp") or char in _BIDI_CONTROLS:
            raise ValueError(f"{name} must not contain control or bidirectional characters")
    return value


def _check_email(value: str) -> None:
    """The shape of an address (``local@domain``), not its existence: a typo such as a
    missing ``@`` or a space is caught when the user is made, not in a relying service."""
    local, at, domain = value.rpartition("@")
    labels = domain.split(".")
    quoted = len(local) > 1 and local.startswith('"') and local.endswith('"')
    if (
        not at
        or not local
        or len(local) > 64
        or ("@" in local and not quoted)  # only a quoted local part may hold an @
        or any(char.isspace() for char in value)
        or not all(label and label[0] != "-" and label[-1] != "-" for label in labels)
        or len(domain) > 255
    ):
        raise ValueError("profile email must be an address like name@example.org")


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(
        self,
        username: str,
        password_hash: str,
        *,
        now: int,
        roles: Iterable[str] = (),
        profile: Mapping[str, str] | None = None,
        disabled: bool = False,
    ) -> User:
        """Create a user; ``UsernameTaken`` if the normalized name exists."""
        check_time("now", now)
        values = {
            "username": normalize_username(username),
            "password_hash": _check_password_hash(password_hash),
            "roles": _check_roles(roles),
            "disabled": check_flag("disabled", disabled),
            "profile": _check_profile(profile),
            "created_at": now,
            "updated_at": now,
        }
        try:
            # A savepoint, so the caller's transaction survives the refusal (PostgreSQL
            # aborts the whole transaction on a failed statement otherwise).
            async with self.session.begin_nested():
                result = await self.session.execute(insert(_users).values(**values))
        except IntegrityError:
            raise UsernameTaken() from None
        return await self._require(inserted_id(result))

    async def get(self, user_id: int, *, for_update: bool = False) -> User | None:
        """The user; ``for_update`` locks the row until commit where the database can."""
        statement = _USER_BY_ID_FOR_UPDATE if for_update else _USER_BY_ID
        row = (await self.session.execute(statement, {"user_id": user_id})).first()
        return None if row is None else _user(row)

    async def get_by_username(self, username: str) -> User | None:
        """The user with that name once normalized; None also for a name no user can have."""
        try:
            normalized = normalize_username(username)
        except InvalidUsername:
            return None
        query = {"username": normalized}
        row = (await self.session.execute(_USER_BY_NAME, query)).first()
        return None if row is None else _user(row)

    async def list(
        self, *, limit: int = 100, after_username: str | None = None
    ) -> builtins.list[User]:
        """Users ordered by username, a page at a time."""
        check_count("limit", limit, minimum=1)
        query = select(_users).order_by(_users.c.username).limit(limit)
        if after_username is not None:
            query = query.where(_users.c.username > after_username)
        return [_user(row) for row in await self.session.execute(query)]

    async def set_roles(self, user_id: int, roles: Iterable[str], *, now: int) -> User:
        return await self._update(user_id, now, roles=_check_roles(roles))

    async def set_disabled(self, user_id: int, disabled: bool, *, now: int) -> User:
        return await self._update(user_id, now, disabled=check_flag("disabled", disabled))

    async def set_password_hash(self, user_id: int, password_hash: str, *, now: int) -> User:
        return await self._update(user_id, now, password_hash=_check_password_hash(password_hash))

    async def set_profile(self, user_id: int, profile: Mapping[str, str], *, now: int) -> User:
        return await self._update(user_id, now, profile=_check_profile(profile))

    async def _update(self, user_id: int, now: int, **values: Any) -> User:
        check_time("now", now)
        statement = update(_users).where(_users.c.id == user_id).values(updated_at=now, **values)
        if rowcount(await self.session.execute(statement)) == 0:
            raise UnknownUser()
        return await self._require(user_id)

    async def _require(self, user_id: int) -> User:
        user = await self.get(user_id)
        if user is None:
            raise UnknownUser()
        return user
