"""The token service: the password, refresh_token and client_credentials grants.

The caller (a thin route) has authenticated the client with ``ClientService``; every
method raises an ``OAuthError`` for the answer RFC 6749 section 5.2 prescribes.

Refresh tokens are 256 random bits, stored only as their SHA-256 (``hash_token``), in
families (one per login). Every use rotates: the presented token is marked used (a
conditional update, so of concurrent uses exactly one rotates) and its successor issued.
The successor is ``successor_token(secret, old)`` (HMAC-SHA256), and the access token
issued beside it is fixed by the ``access_jti``/``access_expires_at`` of its row and its
``issued_at``. So presenting the used token again within ``refresh_reuse_grace`` returns
the same pair (two tabs refreshing at once stay logged in) without storing a token in
clear. Later, the reuse means the token leaked: the whole family and the access tokens
issued with it are revoked, and the event is audited.

Revocation, introspection and the revocation feed are in ``tokens_revocation.py``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from tokensmith.clock import Clock, RandomSource, SystemClock, system_random
from tokensmith.jose import new_jti
from tokensmith.store import (
    AuditEvent,
    Client,
    ConcurrentChange,
    Database,
    InvalidUsername,
    RefreshToken,
    Repositories,
    User,
    hash_token,
    normalize_username,
)

from .audit_writer import AuditWriter
from .clients import check_grant_type, parse_scope, resolve_scope
from .keyring import SigningKeys
from .oauth_errors import (
    InvalidGrant,
    InvalidScope,
    SlowDown,
    TemporarilyUnavailable,
    UnauthorizedClient,
)
from .passwords import PasswordHasher
from .throttle import OnThrottled, Throttle, ThrottleEvent
from .tokens_access import (
    MIN_REFRESH_SECRET,
    AccessGrant,
    TokenResponse,
    TokenSettings,
    access_lifetime,
    scope_tokens,
    sign_access_token,
    successor_token,
)
from .tokens_revocation import RevocationMixin, denylist, refresh_hash

__all__ = ["TokenService", "throttle_auditor"]

# A lost race is retried once it committed; SQLite serializes writers, so more than one
# retry would mean something else is wrong.
_ROTATION_ATTEMPTS = 3


class _LostRace(Exception):
    """Another request rotated the token between our read and our write: read again."""


@dataclass(frozen=True, slots=True)
class _Rotation:
    grant: AccessGrant
    refresh_token: str


class TokenService(RevocationMixin):
    """Issues, rotates, revokes and inspects tokens; see the module docstring.

    ``refresh_secret`` keys the successor derivation (``derive_refresh_secret(master)``):
    every process of one deployment must share it, which the master key already is.

    ``audit`` writes the ``token_issued`` rows of grants that write nothing else (the
    client_credentials grant), batched while it runs (``AuditWriter``); without one, each
    such row is written at once in a transaction of its own.
    """

    def __init__(
        self,
        db: Database,
        keyring: SigningKeys,
        passwords: PasswordHasher,
        throttle: Throttle,
        settings: TokenSettings,
        *,
        refresh_secret: bytes,
        clock: Clock | None = None,
        random: RandomSource = system_random,
        audit: AuditWriter | None = None,
    ) -> None:
        if not isinstance(refresh_secret, bytes) or len(refresh_secret) < MIN_REFRESH_SECRET:
            raise ValueError(f"refresh_secret must be at least {MIN_REFRESH_SECRET} bytes")
        self.db = db
        self.keyring = keyring
        self.passwords = passwords
        self.throttle = throttle
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.random = random
        self.audit = audit if audit is not None else AuditWriter(db)
        self._refresh_secret = refresh_secret

    def __repr__(self) -> str:
        return f"TokenService(issuer={self.settings.issuer!r})"

    def _random_text(self, size: int) -> str:
        return base64.urlsafe_b64encode(self.random(size)).rstrip(b"=").decode("ascii")

    def _new_refresh_token(self) -> str:
        return self._random_text(32)  # 256 bits, as secrets.token_urlsafe(32)

    def _grant(
        self, subject: str, client: Client, scope: tuple[str, ...], now: int, user: User | None
    ) -> AccessGrant:
        exp = now + access_lifetime(client, self.settings)
        return AccessGrant(subject, client, scope, now, exp, new_jti(self.random), user)

    def _respond(self, grant: AccessGrant, refresh_token: str | None) -> TokenResponse:
        token = sign_access_token(grant, self.keyring.signer(), self.settings.issuer)
        return TokenResponse(
            access_token=token,
            expires_in=max(0, grant.exp - self._now()),
            scope=" ".join(grant.scope),
            refresh_token=refresh_token,
        )

    # -- password -----------------------------------------------------------------

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
            client_address=address[:255] or None,
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
                client_address=address[:255] or None,
                detail={"reason": reason},
            )

    async def _audit_issued(
        self, repos: Repositories, grant: AccessGrant, grant_type: str, address: str | None
    ) -> None:
        """The ``token_issued`` row, in the caller's transaction."""
        await repos.audit.record(AuditEvent.TOKEN_ISSUED, **_issued(grant, grant_type, address))

    # -- client_credentials ---------------------------------------------------------

    async def client_credentials_grant(self, client: Client, scope: str | None) -> TokenResponse:
        """RFC 6749 section 4.4: an access token for the client itself, no refresh token."""
        check_grant_type(client, "client_credentials")
        if client.is_public:
            raise UnauthorizedClient()  # section 4.4: confidential clients only
        granted = resolve_scope(client.scopes, scope)
        grant = self._grant(client.client_id, client, granted, self._now(), None)
        response = self._respond(grant, None)
        # Nothing else is written, so the row is batched rather than given a transaction
        # of its own (AuditWriter); it is queued before the token is handed out.
        await self.audit.record(
            AuditEvent.TOKEN_ISSUED, **_issued(grant, "client_credentials", None)
        )
        return response

    # -- refresh_token ----------------------------------------------------------------

    async def refresh_grant(
        self, client: Client, refresh_token: str, scope: str | None
    ) -> TokenResponse:
        """RFC 6749 section 6, with rotation, the grace window and reuse detection."""
        check_grant_type(client, "refresh_token")
        requested = parse_scope(scope)
        token_hash = refresh_hash(refresh_token)
        if token_hash is None:
            raise InvalidGrant()
        self.keyring.signer()  # NoSigningKey before anything is rotated
        for _ in range(_ROTATION_ATTEMPTS):
            try:
                rotation = await self._rotate(client, refresh_token, token_hash, requested)
            except (_LostRace, ConcurrentChange):
                continue  # the winner has committed: the next read sees its rotation
            if rotation is None:
                raise InvalidGrant()  # reuse: the family was revoked and that committed
            return self._respond(rotation.grant, rotation.refresh_token)
        raise InvalidGrant()

    async def _rotate(
        self,
        client: Client,
        token: str,
        token_hash: str,
        requested: tuple[str, ...] | None,
    ) -> _Rotation | None:
        """One attempt in one transaction; None when reuse was detected (and committed)."""
        now = self._now()
        successor = successor_token(self._refresh_secret, token)
        async with self.db.transaction() as session:
            repos = Repositories(session)
            row = await repos.refresh_tokens.get_by_hash(token_hash)
            if row is None or row.client_id != client.client_id or row.revoked_at is not None:
                raise InvalidGrant()
            if row.used_at is not None:
                grace = self.settings.refresh_reuse_grace
                if grace > 0 and now - row.used_at <= grace:  # 0: no grace at all
                    repeat = await self._repeat(repos, row, successor, client, requested, now)
                    if repeat is not None:
                        return repeat
                await self._reuse_detected(repos, row, client, now)
                return None
            if row.expired(now):
                raise InvalidGrant()
            user = await self._active_user(repos, row)
            granted = self._narrow(row, client, requested)
            grant = self._grant(str(user.id), client, granted, now, user)
            new = await repos.refresh_tokens.add(
                token_hash=hash_token(successor),
                family_id=row.family_id,
                user_id=row.user_id,
                client_id=row.client_id,
                scope=row.scope,  # section 6: the new refresh token keeps the old scope
                issued_at=now,
                expires_at=now + self.settings.refresh_token_idle_lifetime,
                family_expires_at=row.family_expires_at,
                access_jti=grant.jti,
                access_expires_at=grant.exp,
                access_scope=" ".join(grant.scope),
            )
            if not await repos.refresh_tokens.mark_used(row.id, now, new.id):
                raise _LostRace()  # rolls the successor back
            await self._audit_issued(repos, grant, "refresh_token", None)
        return _Rotation(grant, successor)

    async def _repeat(
        self,
        repos: Repositories,
        row: RefreshToken,
        successor: str,
        client: Client,
        requested: tuple[str, ...] | None,
        now: int,
    ) -> _Rotation | None:
        """The pair the first use of ``row`` returned, if it can be given again."""
        new = await repos.refresh_tokens.get_by_hash(hash_token(successor))
        if (
            new is None
            or new.id != row.replaced_by
            or new.revoked_at is not None
            or new.expired(now)
            or new.access_jti is None
            or new.access_expires_at is None
            or new.access_expires_at <= now
        ):
            # Not reproducible (the secret changed, or the family is gone): not a
            # concurrent twin we can serve, so it counts as reuse.
            return None
        user = await self._active_user(repos, row)
        if new.access_scope is None:  # a row from before revision 0003
            granted = self._narrow(row, client, requested)
        else:
            # The scope the first answer carried: the same jti must never name two
            # different tokens. A twin that asks for another scope is not a twin.
            granted = tuple(scope_tokens(new.access_scope))
            if requested is not None and set(requested) != set(granted):
                raise InvalidGrant()
        subject = str(user.id)
        grant = AccessGrant(
            subject, client, granted, new.issued_at, new.access_expires_at, new.access_jti, user
        )
        return _Rotation(grant, successor)

    async def _reuse_detected(
        self, repos: Repositories, row: RefreshToken, client: Client, now: int
    ) -> None:
        refs = await repos.refresh_tokens.revoke_family(
            row.family_id, now, leeway=self.settings.leeway
        )
        await denylist(repos, refs, str(row.user_id), now, self.settings.leeway)
        await repos.audit.record(
            AuditEvent.REFRESH_REUSE_DETECTED,
            at=now,
            actor=client.client_id,
            subject=str(row.user_id),
            detail={"family_id": row.family_id, "access_tokens_revoked": len(refs)},
        )

    async def _active_user(self, repos: Repositories, row: RefreshToken) -> User:
        user = await repos.users.get(row.user_id)
        if user is None or user.disabled:
            raise InvalidGrant()
        return user

    def _narrow(
        self, row: RefreshToken, client: Client, requested: tuple[str, ...] | None
    ) -> tuple[str, ...]:
        """The access token's scope: at most the login's, and what the client still has."""
        allowed = [s for s in scope_tokens(row.scope) if s in client.scopes]
        if requested is None:
            return tuple(allowed)
        if not set(requested) <= set(allowed):
            raise InvalidScope()
        return requested


def _issued(grant: AccessGrant, grant_type: str, address: str | None) -> dict[str, Any]:
    """The columns of a ``token_issued`` row but its event."""
    return {
        "at": grant.iat,
        "actor": grant.client.client_id,
        "subject": grant.subject,
        "client_address": (address or "")[:255] or None,
        "detail": {"grant_type": grant_type, "jti": grant.jti, "scope": " ".join(grant.scope)},
    }


def throttle_auditor(db: Database) -> OnThrottled:
    """An ``on_throttled`` callback for ``Throttle`` that writes a ``throttled`` audit row.

    The throttle calls it once per delay or lock, not once per refused request, so a
    client hammering a lock adds one row. The attempted username is not recorded (it may
    be a mistyped password); a client id (``kind="client"``) is, when it names a
    registered client (public), and not otherwise (it may be a misplaced secret).
    """

    async def record(event: ThrottleEvent) -> None:
        async with db.transaction() as session:
            repos = Repositories(session)
            subject = None
            if event.kind == "client" and await repos.clients.get(event.username) is not None:
                subject = event.username
            await repos.audit.record(
                AuditEvent.THROTTLED,
                at=int(event.at),
                subject=subject,
                client_address=event.address[:255] or None,
                detail={
                    "kind": event.kind,
                    "reason": event.reason.value,
                    "retry_after": event.retry_after,
                    "failures": event.failures,
                },
            )

    return record
