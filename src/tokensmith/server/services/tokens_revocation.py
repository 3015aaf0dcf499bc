"""Revocation (RFC 7009), introspection (RFC 7662), the revocation feed and log-out-everywhere.

A mixin of ``TokenService``: the methods share its database, key ring, settings and clock.
Denylist entries are kept until the token's ``exp`` plus the leeway, because verifiers
tolerate that much clock skew and would accept the token until then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tokensmith.clock import Clock
from tokensmith.store import (
    AccessTokenRef,
    AuditEvent,
    Client,
    Database,
    RefreshToken,
    Repositories,
    UnknownUser,
    hash_token,
)

from .audit_log import audit_address
from .keyring import SigningKeys
from .tokens_access import TokenSettings, verify_access_token

__all__ = [
    "MAX_FEED_LIMIT",
    "MAX_TOKEN_LENGTH",
    "RevocationMixin",
    "denylist",
    "refresh_hash",
    "revoke_family",
]

#: Longer than any token we issue (access tokens are capped at 8 KiB by the JOSE core).
MAX_TOKEN_LENGTH = 8192
MAX_FEED_LIMIT = 1000
_INACTIVE: dict[str, Any] = {"active": False}


def refresh_hash(token: object) -> str | None:
    """The stored hash of a presented refresh token; None if it cannot be one of ours."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        return hash_token(token)
    except UnicodeEncodeError:  # lone surrogates: not a token we issued
        return None


async def denylist(
    repos: Repositories, refs: Sequence[AccessTokenRef], subject: str, now: int, leeway: int
) -> int:
    """Denylist the access tokens of revoked refresh tokens; returns how many were new."""
    added = 0
    for ref in refs:
        added += await repos.revocations.add(ref.jti, subject, ref.expires_at + leeway, now)
    return added


async def revoke_family(
    repos: Repositories, row: RefreshToken, now: int, leeway: int
) -> list[AccessTokenRef]:
    """Revoke ``row``'s family and denylist the access tokens issued with it (those still
    accepted within ``leeway`` included); returns what was denylisted."""
    refs = await repos.refresh_tokens.revoke_family(row.family_id, now, leeway=leeway)
    await denylist(repos, refs, str(row.user_id), now, leeway)
    return refs


def _looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class RevocationMixin:
    db: Database
    keyring: SigningKeys
    settings: TokenSettings
    clock: Clock

    def _now(self) -> int:
        return int(self.clock.now())

    def _verify(self, token: str, leeway: int) -> dict[str, Any] | None:
        return verify_access_token(
            token, self.keyring, self.settings.issuer, leeway=leeway, clock=self.clock
        )

    async def revoke(
        self,
        client: Client,
        token: str,
        hint: str | None = None,
        *,
        client_address: str | None = None,
    ) -> None:
        """RFC 7009: revoke a refresh token (its family) or an access token (its jti).

        Never fails for a bad token: unknown, malformed, expired tokens and tokens of
        another client are ignored (section 2.2: the answer is 200 either way, so the
        caller learns nothing about tokens it does not own). ``hint`` is not needed: the
        two kinds cannot be confused (a JWT has two dots, a refresh token none).
        ``client_address``: the requesting peer, for the ``token_revoked`` row.
        """
        del hint
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            return
        if _looks_like_jwt(token):
            await self._revoke_access(client, token, client_address)
        else:
            await self._revoke_refresh(client, token, client_address)

    async def _revoke_refresh(self, client: Client, token: str, address: str | None) -> None:
        token_hash = refresh_hash(token)
        if token_hash is None:
            return
        now = self._now()
        async with self.db.transaction() as session:
            repos = Repositories(session)
            row = await repos.refresh_tokens.get_by_hash(token_hash)
            if row is None or row.client_id != client.client_id:
                return
            await revoke_family(repos, row, now, self.settings.leeway)
            await repos.audit.record(
                AuditEvent.TOKEN_REVOKED,
                at=now,
                actor=client.client_id,
                subject=str(row.user_id),
                client_address=audit_address(address),
                detail={"token_type": "refresh_token", "family_id": row.family_id},
            )

    async def _revoke_access(self, client: Client, token: str, address: str | None) -> None:
        leeway = self.settings.leeway
        claims = self._verify(token, leeway)
        if claims is None or claims["client_id"] != client.client_id:
            return
        now = self._now()
        async with self.db.transaction() as session:
            repos = Repositories(session)
            added = await repos.revocations.add(
                claims["jti"], claims["sub"], claims["exp"] + leeway, now
            )
            if added:
                await repos.audit.record(
                    AuditEvent.TOKEN_REVOKED,
                    at=now,
                    actor=client.client_id,
                    subject=claims["sub"],
                    client_address=audit_address(address),
                    detail={"token_type": "access_token", "jti": claims["jti"]},
                )

    async def introspect(self, client: Client, token: str) -> dict[str, Any]:
        """RFC 7662: ``{"active": false}`` for anything not currently valid.

        Access tokens are described to any authenticated client (resource servers are
        clients too); a refresh token only to the client it was issued to.
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            return dict(_INACTIVE)
        if _looks_like_jwt(token):
            return await self._introspect_access(token)
        return await self._introspect_refresh(client, token)

    async def active_access_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of an access token this server issued that is valid and not revoked
        (denylisted jti, or issued before its subject's not-before); None otherwise."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            return None
        # No leeway: this server's clock is the reference the leeway exists to forgive.
        claims = self._verify(token, 0)
        if claims is None:
            return None
        async with self.db.read() as session:
            revocations = Repositories(session).revocations
            if await revocations.is_revoked(claims["jti"]):
                return None
            not_before = await revocations.get_not_before(claims["sub"])
        if not_before is not None and claims["iat"] < not_before:
            return None
        return claims

    async def _introspect_access(self, token: str) -> dict[str, Any]:
        claims = await self.active_access_claims(token)
        if claims is None:
            return dict(_INACTIVE)
        answer: dict[str, Any] = {"active": True}
        for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti"):
            if name in claims:
                answer[name] = claims[name]
        answer["token_type"] = "Bearer"
        return answer

    async def _introspect_refresh(self, client: Client, token: str) -> dict[str, Any]:
        token_hash = refresh_hash(token)
        if token_hash is None:
            return dict(_INACTIVE)
        now = self._now()
        async with self.db.read() as session:
            row = await Repositories(session).refresh_tokens.get_by_hash(token_hash)
        if (
            row is None
            or row.client_id != client.client_id
            or row.revoked_at is not None
            or row.used_at is not None
            or row.expired(now)
        ):
            return dict(_INACTIVE)
        answer: dict[str, Any] = {"active": True}
        if row.scope:  # none: no member, as in the token response
            answer["scope"] = row.scope
        answer.update(
            client_id=row.client_id,
            sub=str(row.user_id),
            iat=row.issued_at,
            exp=min(row.expires_at, row.family_expires_at),
            token_type="refresh_token",
        )
        return answer

    async def revocation_feed(self, after: int, limit: int = 100) -> dict[str, Any]:
        """``GET /oauth/revocations``: revoked jtis and not-before times after a cursor."""
        if type(after) is not int or after < 0:
            raise ValueError("after must be a non-negative integer")
        limit = max(1, min(limit, MAX_FEED_LIMIT))
        async with self.db.read() as session:
            page = await Repositories(session).revocations.feed(after, limit, self._now())
        return {
            "revoked": [{"jti": r.jti, "exp": r.expires_at} for r in page.revoked],
            "not_before": [{"sub": n.subject, "nbf": n.not_before} for n in page.not_before],
            "next_cursor": page.next_cursor,
        }

    async def revoke_all_for_user(
        self, user_id: int, *, actor: str | None = None, client_address: str | None = None
    ) -> int:
        """Log out everywhere: every refresh family and every access token issued so far.

        Not-before is the next second: ``iat`` counts whole seconds, so a token issued
        in this very second (by a login that read the user just before) is refused too,
        with or without a refresh token (whose access tokens are denylisted by jti as
        well). A login later in this second is told to retry (``password_grant``).
        Returns how many access tokens were denylisted.
        """
        now = self._now()
        async with self.db.transaction() as session:
            repos = Repositories(session)
            if await repos.users.get(user_id) is None:
                raise UnknownUser()
            return await self.revoke_all_within(
                repos, user_id, now, actor=actor, client_address=client_address
            )

    async def revoke_all_within(
        self,
        repos: Repositories,
        user_id: int,
        now: int,
        *,
        actor: str | None = None,
        client_address: str | None = None,
    ) -> int:
        """``revoke_all_for_user`` in the caller's transaction (disabling a user does both
        in one, so a failure cannot leave a disabled user's tokens working)."""
        subject = str(user_id)
        await repos.revocations.set_not_before(subject, now + 1)
        refs = await repos.refresh_tokens.revoke_user(user_id, now, leeway=self.settings.leeway)
        added = await denylist(repos, refs, subject, now, self.settings.leeway)
        await repos.audit.record(
            AuditEvent.TOKEN_REVOKED,
            at=now,
            actor=actor,
            subject=subject,
            client_address=audit_address(client_address),
            detail={"token_type": "all", "access_tokens_revoked": added},
        )
        return added
