"""The password grant (RFC 6749 section 4.3).

A mixin of ``TokenService``: the methods share its database, key ring, password hasher,
throttle, settings and clock, and sign with its ``_grant``/``_respond``. argon2 runs
outside any transaction, so the user is read again when the login is written
(``_write_login``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tokensmith.store import (
    AuditEvent,
    Client,
    Database,
    InvalidUsername,
    Repositories,
    User,
    hash_token,
    normalize_username,
)

from .audit_log import audit_address
from .client_rules import check_grant_type, resolve_scope
from .keyring import SigningKeys
from .oauth_errors import InvalidGrant, SlowDown, TemporarilyUnavailable
from .passwords import PasswordHasher
from .throttle import Throttle
from .tokens_access import AccessGrant, TokenResponse, TokenSettings

__all__ = ["PasswordGrantMixin"]


class PasswordGrantMixin:
    db: Database
    keyring: SigningKeys
    passwords: PasswordHasher
    throttle: Throttle
    settings: TokenSettings
    _now: Callable[[], int]
    _random_text: Callable[[int], str]
    _new_refresh_token: Callable[[], str]
    _grant: Callable[[str, Client, tuple[str, ...], int, User | None], AccessGrant]
    _respond: Callable[[AccessGrant, str | None], TokenResponse]
    _audit_issued: Callable[[Repositories, AccessGrant, str, str | None], Awaitable[None]]

    async def password_grant(
        self, client: Client, username: str, password: str, scope: str | None, address: str
    ) -> TokenResponse:
        """RFC 6749 section 4.3. One ``InvalidGrant`` for unknown, disabled or wrong."""
        check_grant_type(client, "password")
        granted = resolve_scope(client.scopes, scope)
        self.keyring.signer()  # NoSigningKey now, before any credential is counted
        try:
            name: str | None = normalize_username(username)
        except InvalidUsername:
            name = None  # no user can have it: checked like an unknown user
        counted = name if name is not None else username
        attempt = await self.throttle.begin(counted, address)
        if not attempt.decision.allowed:
            raise SlowDown(attempt.decision.retry_after)
        try:
            user = None
            if name is not None:
                async with self.db.read() as session:
                    user = await Repositories(session).users.get_by_username(name)
            result = await self.passwords.verify_async(
                user.password_hash if user is not None else None, password
            )
            if not result.ok or user is None or user.disabled:
                await attempt.failed()
                reason = "unknown_user" if user is None else "disabled" if result.ok else "password"
                await self._audit_login(AuditEvent.LOGIN_FAILED, client, user, address, reason)
                raise InvalidGrant()
            new_hash = await self.passwords.hash_async(password) if result.needs_rehash else None
            await attempt.succeeded()
        finally:
            attempt.release()  # a database failure or a cancellation: no verdict

        refresh = self._new_refresh_token() if "refresh_token" in client.grant_types else None
        for _ in range(2):
            done = await self._write_login(client, user, granted, refresh, new_hash, address)
            if isinstance(done, TokenResponse):
                return done
            if (
                done is None
                or not (await self.passwords.verify_async(done.password_hash, password)).ok
            ):
                break
            # Another login of this user rehashed the same password meanwhile (a reset
            # would not match): the login goes on with the row as it is now.
            user, new_hash = done, None
        await self._audit_login(AuditEvent.LOGIN_FAILED, client, user, address, "changed")
        raise InvalidGrant()

    async def _write_login(
        self,
        client: Client,
        user: User,
        granted: tuple[str, ...],
        refresh: str | None,
        new_hash: str | None,
        address: str,
    ) -> TokenResponse | User | None:
        """Sign and write a login for ``user`` as read before argon2 ran.

        An admin may have changed the user since. Returns the user as it is now, writing
        nothing, if its password hash changed (a reset, or another login's rehash);
        None if it was disabled or deleted. New roles or profile claims are signed in.
        """
        now = self._now()
        grant = self._grant(str(user.id), client, granted, now, user)
        response = self._respond(grant, refresh)  # signed before anything is written
        async with self.db.transaction() as session:
            repos = Repositories(session)
            current = await repos.users.get(user.id, for_update=True)
            if current is None or current.disabled:
                return None
            if current.password_hash != user.password_hash:
                return current
            if current != user:
                grant = self._grant(str(current.id), client, granted, now, current)
                response = self._respond(grant, refresh)
            await self._record_login(
                repos, client, current, grant, refresh, granted, new_hash, address, now
            )
        return response

    async def _record_login(
        self,
        repos: Repositories,
        client: Client,
        user: User,
        grant: AccessGrant,
        refresh: str | None,
        granted: tuple[str, ...],
        new_hash: str | None,
        address: str,
        now: int,
    ) -> None:
        """A password grant's writes, in the caller's transaction."""
        not_before = await repos.revocations.get_not_before(grant.subject)
        if not_before is not None and grant.iat < not_before:
            # Logged out everywhere (or disabled) in this very second, after the user
            # was read: the token would be refused everywhere, so none is handed out.
            raise TemporarilyUnavailable(
                "The user's sessions were just revoked; retry in a second.", retry_after=1
            )
        if new_hash is not None:
            await repos.users.set_password_hash(user.id, new_hash, now=now)
        if refresh is not None:
            await repos.refresh_tokens.add(
                token_hash=hash_token(refresh),
                family_id=self._random_text(16),
                user_id=user.id,
                client_id=client.client_id,
                scope=" ".join(granted),
                issued_at=now,
                expires_at=now + self.settings.refresh_token_idle_lifetime,
                family_expires_at=now + self.settings.refresh_token_absolute_lifetime,
                access_jti=grant.jti,
                access_expires_at=grant.exp,
                access_scope=" ".join(grant.scope),
            )
        detail = {"client_id": client.client_id, "rehashed": new_hash is not None}
        await repos.audit.record(
            AuditEvent.LOGIN_OK,
            at=now,
            actor=client.client_id,
            subject=str(user.id),
            client_address=audit_address(address),
            detail=detail,
        )
        await self._audit_issued(repos, grant, "password", address)

    async def _audit_login(
        self, event: AuditEvent, client: Client, user: User | None, address: str, reason: str
    ) -> None:
        # The attempted username is left out for unknown users: people type passwords
        # into username fields, and the audit log must never hold one.
        async with self.db.transaction() as session:
            await Repositories(session).audit.record(
                event,
                at=self._now(),
                actor=client.client_id,
                subject=None if user is None else str(user.id),
                client_address=audit_address(address),
                detail={"reason": reason},
            )
