"""User management: create, list, change roles, disable, reset the password, log out everywhere.

One service for the CLI (``tokensmith users``) and the admin API, so both write the same
rows and the same audit entries (the API's with the ``client_address`` of its request).
Each change is written with its audit row in one transaction: the log never misses a
change that happened nor records one that did not. Passwords are hashed in a worker
thread before the transaction begins (on SQLite a transaction holds the one write lock).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from tokensmith.clock import Clock, SystemClock
from tokensmith.errors import TokensmithError
from tokensmith.store import MAX_ROLE, AuditEvent, Database, Repositories, UnknownUser, User

from .audit_log import audit_address
from .oauth_errors import InsufficientRole, InvalidToken
from .passwords import PasswordHasher
from .tokens import TokenService

__all__ = [
    "ADMIN_ROLE",
    "UserPage",
    "UserService",
    "admin_audience",
    "normalize_roles",
    "user_summary",
]

MAX_PAGE = 500
ADMIN_ROLE = "ADMIN"
_ROLE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:/-]{{0,{MAX_ROLE - 1}}}")
# The ``sub`` of a user's token is ``str(user.id)``: no sign, no leading zero, and below
# 10**18, a 64-bit integer on every backend.
_USER_ID = re.compile(r"[1-9][0-9]{0,17}")


class InvalidUserData(TokensmithError):
    """A role or profile value the store refuses (too long, empty, not text)."""

    code = "invalid_user_data"
    description = "A role or profile value is not valid."


@contextmanager
def _checked() -> Iterator[None]:
    # The store's checks raise TypeError/ValueError with our own fixed texts.
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise InvalidUserData(str(exc)) from None


def admin_audience(issuer: str) -> str:
    """The ``aud`` an access token needs for the admin API: the API's own URL.

    A token issued for some other service must not work here (RFC 8725 section 3.9):
    that service could replay it against the admin API.
    """
    return issuer.rstrip("/") + "/admin"


def normalize_roles(values: Iterable[str]) -> list[str]:
    """Upper-cased, stripped, deduplicated, in order; ``ValueError`` for a bad name.

    Roles are compared as written in tokens; upper case is the documented convention
    (EDITOR, ADMIN), so "admin" typed by an operator means ADMIN. Names are ASCII
    (letters, digits, ``_ . : / -``) and checked before upper-casing: Unicode's case
    mapping turns other letters into ASCII ones ("adm\\u0131n", with a dotless i, would become
    ADMIN), and control or bidirectional characters would reach every token and log.
    """
    if isinstance(values, str | bytes):
        raise TypeError("roles must be a collection of strings, not one string")
    roles: dict[str, None] = {}
    for value in values:
        if type(value) is not str:
            raise TypeError("each role must be a str")
        name = value.strip()
        if not name:
            continue
        if not _ROLE.fullmatch(name):
            raise ValueError(
                f"a role is 1 to {MAX_ROLE} ASCII letters, digits and _ . : / - "
                "(starting with a letter or digit)"
            )
        roles[name.upper()] = None
    return list(roles)


def _token_roles(claims: Mapping[str, Any]) -> list[str]:
    """The ``roles`` of verified claims (none: ``[]``); ``InvalidToken`` if not a list of
    strings, which ``tokensmith.verify`` refuses as a malformed token too."""
    roles = claims.get("roles", [])
    if type(roles) is not list or not all(type(role) is str for role in roles):
        raise InvalidToken()
    return roles


def _token_user_id(subject: str) -> int:
    """The user id a token's ``sub`` names; ``InvalidToken`` for any other text.

    Only the exact form a token of ours carries: "01" must not name user 1, and digits
    past a 64-bit id must not reach the database (SQLite raised OverflowError: a 500).
    """
    if not _USER_ID.fullmatch(subject):
        raise InvalidToken()
    return int(subject)


def user_summary(user: User) -> dict[str, Any]:
    """What the CLI's ``--json`` and the admin API show of a user: never its hash."""
    return {
        "id": user.id,
        "username": user.username,
        "roles": list(user.roles),
        "disabled": user.disabled,
        "profile": dict(user.profile),
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[User]
    #: The ``after`` of the next page; None on the last one.
    next_after: str | None


class UserService:
    def __init__(
        self,
        db: Database,
        passwords: PasswordHasher,
        tokens: TokenService,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.db = db
        self.passwords = passwords
        self.tokens = tokens
        self.clock: Clock = clock or SystemClock()

    def _now(self) -> int:
        return int(self.clock.now())

    async def create(
        self,
        username: str,
        password: str,
        *,
        roles: Iterable[str] = (),
        profile: Mapping[str, str] | None = None,
        actor: str | None = None,
        client_address: str | None = None,
    ) -> User:
        """A new user; ``WeakPassword``, ``InvalidUsername`` or ``UsernameTaken`` otherwise."""
        self.passwords.check_new_password(password)
        password_hash = await self.passwords.hash_async(password)
        now = self._now()
        async with self.db.transaction() as session:
            repos = Repositories(session)
            with _checked():
                user = await repos.users.add(
                    username, password_hash, now=now, roles=normalize_roles(roles), profile=profile
                )
            await repos.audit.record(
                AuditEvent.USER_CREATED,
                at=now,
                actor=actor,
                subject=str(user.id),
                client_address=audit_address(client_address),
                detail={"username": user.username, "roles": list(user.roles)},
            )
        return user

    async def get(self, username: str) -> User:
        async with self.db.read() as session:
            user = await Repositories(session).users.get_by_username(username)
        if user is None:
            raise UnknownUser(f"no user is named {username!r}")
        return user

    async def page(self, *, after: str | None = None, limit: int = 100) -> UserPage:
        """Users in username order, ``limit`` (1 to 500) at a time."""
        limit = max(1, min(limit, MAX_PAGE))
        async with self.db.read() as session:
            # One more than asked tells whether a next page exists without a count.
            found = await Repositories(session).users.list(limit=limit + 1, after_username=after)
        more = len(found) > limit
        found = found[:limit]
        return UserPage(found, found[-1].username if more and found else None)

    async def all(self) -> list[User]:
        found: list[User] = []
        after: str | None = None
        while True:
            page = await self.page(after=after, limit=MAX_PAGE)
            found.extend(page.users)
            if page.next_after is None:
                return found
            after = page.next_after

    async def set_roles(
        self,
        username: str,
        roles: Iterable[str],
        *,
        actor: str | None,
        client_address: str | None = None,
    ) -> User:
        """Replace the user's roles; tokens issued from now on carry them."""
        user = await self.get(username)
        now = self._now()
        async with self.db.transaction() as session:
            repos = Repositories(session)
            with _checked():
                changed = await repos.users.set_roles(user.id, normalize_roles(roles), now=now)
            await repos.audit.record(
                AuditEvent.USER_CHANGED,
                at=now,
                actor=actor,
                subject=str(user.id),
                client_address=audit_address(client_address),
                detail={"username": user.username, "change": "roles", "roles": list(changed.roles)},
            )
        return changed

    async def set_disabled(
        self,
        username: str,
        disabled: bool,
        *,
        actor: str | None,
        client_address: str | None = None,
    ) -> tuple[User, int]:
        """Disable (every token of the user revoked too) or enable; returns the user and
        how many access tokens were denylisted."""
        user = await self.get(username)
        now = self._now()
        async with self.db.transaction() as session:
            repos = Repositories(session)
            changed = await repos.users.set_disabled(user.id, disabled, now=now)
            await repos.audit.record(
                AuditEvent.USER_CHANGED,
                at=now,
                actor=actor,
                subject=str(user.id),
                client_address=audit_address(client_address),
                detail={"username": user.username, "change": "disabled" if disabled else "enabled"},
            )
            revoked = 0
            if disabled:
                # A disabled account must not keep working until its access tokens expire.
                revoked = await self.tokens.revoke_all_within(
                    repos, user.id, now, actor=actor, client_address=client_address
                )
        return changed, revoked

    async def set_password(
        self, username: str, password: str, *, actor: str | None, client_address: str | None = None
    ) -> User:
        """A new password (the policy applies); existing sessions are left as they are."""
        self.passwords.check_new_password(password)
        user = await self.get(username)
        password_hash = await self.passwords.hash_async(password)
        now = self._now()
        async with self.db.transaction() as session:
            repos = Repositories(session)
            changed = await repos.users.set_password_hash(user.id, password_hash, now=now)
            await repos.audit.record(
                AuditEvent.USER_CHANGED,
                at=now,
                actor=actor,
                subject=str(user.id),
                client_address=audit_address(client_address),
                detail={"username": user.username, "change": "password"},
            )
        return changed

    async def authenticate_admin(self, token: str, issuer: str) -> User:
        """The user behind an admin API bearer token, or ``InvalidToken`` / ``InsufficientRole``.

        The token must be one of ours, unexpired, not revoked, meant for the admin API,
        and carry role ADMIN; its user must still exist, be enabled and still hold
        ADMIN, so a demotion takes effect at once rather than when the token expires.
        """
        claims = await self.tokens.active_access_claims(token)
        if claims is None:
            raise InvalidToken()
        # The admin API alone: a token that also names another service is held by that
        # service, which could replay it here (RFC 8725 section 3.9).
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if audiences != [admin_audience(issuer)]:
            raise InvalidToken("The access token is not meant for the admin API alone.")
        # A client_credentials token (sub = the client id) has no roles: 403 here.
        if ADMIN_ROLE not in _token_roles(claims):
            raise InsufficientRole()
        user_id = _token_user_id(claims["sub"])
        async with self.db.read() as session:
            user = await Repositories(session).users.get(user_id)
        if user is None or user.disabled:
            raise InvalidToken()
        if ADMIN_ROLE not in user.roles:
            raise InsufficientRole()
        return user

    async def revoke_tokens(
        self, username: str, *, actor: str | None, client_address: str | None = None
    ) -> int:
        """Log the user out everywhere; returns how many access tokens were denylisted."""
        user = await self.get(username)
        return await self.tokens.revoke_all_for_user(
            user.id, actor=actor, client_address=client_address
        )
