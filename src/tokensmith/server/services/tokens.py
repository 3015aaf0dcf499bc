"""The token service: the password, refresh_token and client_credentials grants.

The caller (a thin route) has authenticated the client with ``ClientService``; every
method raises an ``OAuthError`` for the answer RFC 6749 section 5.2 prescribes.

``TokenService`` is assembled from mixins: the password grant is in ``tokens_password.py``,
the refresh_token grant (rotation, the grace window, reuse detection) in
``tokens_refresh.py``, and revocation, introspection and the revocation feed in
``tokens_revocation.py``. The client_credentials grant is here, with the signing and
audit helpers the grants share.
"""

from __future__ import annotations

import base64
from typing import Any

from tokensmith.clock import Clock, RandomSource, SystemClock, system_random
from tokensmith.jose import new_jti
from tokensmith.store import AuditEvent, Client, Database, Repositories, User

from .audit_log import audit_address
from .audit_writer import AuditWriter
from .client_rules import check_grant_type, resolve_scope
from .keyring import SigningKeys
from .oauth_errors import UnauthorizedClient
from .passwords import PasswordHasher
from .throttle import OnThrottled, Throttle, ThrottleEvent
from .tokens_access import (
    MIN_REFRESH_SECRET,
    AccessGrant,
    TokenResponse,
    TokenSettings,
    access_lifetime,
    sign_access_token,
)
from .tokens_password import PasswordGrantMixin
from .tokens_refresh import RefreshGrantMixin
from .tokens_revocation import RevocationMixin

__all__ = ["TokenService", "throttle_auditor"]


class TokenService(PasswordGrantMixin, RefreshGrantMixin, RevocationMixin):
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

    async def _audit_issued(
        self, repos: Repositories, grant: AccessGrant, grant_type: str, address: str | None
    ) -> None:
        """The ``token_issued`` row, in the caller's transaction."""
        await repos.audit.record(AuditEvent.TOKEN_ISSUED, **_issued(grant, grant_type, address))

    # -- client_credentials ---------------------------------------------------------

    async def client_credentials_grant(
        self, client: Client, scope: str | None, *, client_address: str | None = None
    ) -> TokenResponse:
        """RFC 6749 section 4.4: an access token for the client itself, no refresh token.

        ``client_address``: the requesting peer, for the ``token_issued`` row.
        """
        check_grant_type(client, "client_credentials")
        if client.is_public:
            raise UnauthorizedClient()  # section 4.4: confidential clients only
        granted = resolve_scope(client.scopes, scope)
        grant = self._grant(client.client_id, client, granted, self._now(), None)
        response = self._respond(grant, None)
        # Nothing else is written, so the row is batched rather than given a transaction
        # of its own (AuditWriter); it is queued before the token is handed out.
        await self.audit.record(
            AuditEvent.TOKEN_ISSUED, **_issued(grant, "client_credentials", client_address)
        )
        return response


def _issued(grant: AccessGrant, grant_type: str, address: str | None) -> dict[str, Any]:
    """The columns of a ``token_issued`` row but its event."""
    return {
        "at": grant.iat,
        "actor": grant.client.client_id,
        "subject": grant.subject,
        "client_address": audit_address(address),
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
                client_address=audit_address(event.address),
                detail={
                    "kind": event.kind,
                    "reason": event.reason.value,
                    "retry_after": event.retry_after,
                    "failures": event.failures,
                },
            )

    return record
