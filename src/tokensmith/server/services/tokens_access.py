"""Access tokens (RFC 9068) and the values the token service hands back.

Building the claims, signing them and checking our own tokens again (for revocation and
introspection) live here so the grant logic in ``tokens*.py`` reads as the protocol.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tokensmith.clock import Clock
from tokensmith.errors import TokenError
from tokensmith.jose import JWK, JWTPolicy, decode_unverified, encode_jwt, verify_jwt
from tokensmith.keys import MasterKey
from tokensmith.store import Client, User

from .keyring import SigningKeys
from .oauth_errors import UnauthorizedClient

__all__ = [
    "ACCESS_TOKEN_TYP",
    "AccessGrant",
    "TokenResponse",
    "TokenSettings",
    "access_lifetime",
    "derive_refresh_secret",
    "sign_access_token",
    "successor_token",
    "verify_access_token",
]

ACCESS_TOKEN_TYP = "at+jwt"
_REFRESH_LABEL = b"tokensmith/refresh-token-successor/v1"
MIN_REFRESH_SECRET = 32


class TokenSettings(Protocol):
    """What the token service reads from ``tokensmith.server.settings.Settings``."""

    @property
    def issuer(self) -> str: ...
    @property
    def access_token_lifetime(self) -> int: ...
    @property
    def refresh_token_idle_lifetime(self) -> int: ...
    @property
    def refresh_token_absolute_lifetime(self) -> int: ...
    @property
    def refresh_reuse_grace(self) -> int: ...
    @property
    def leeway(self) -> int: ...


@dataclass(frozen=True, slots=True)
class TokenResponse:
    """The token endpoint's success body (RFC 6749 section 5.1). Secrets hidden from repr."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    token_type: str = "Bearer"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.scope:  # RFC 6749's scope is one or more tokens: none, no member
            body["scope"] = self.scope
        return body

    def __repr__(self) -> str:
        refresh = "None" if self.refresh_token is None else "<hidden>"
        return (
            f"TokenResponse(access_token=<hidden>, expires_in={self.expires_in}, "
            f"scope={self.scope!r}, refresh_token={refresh})"
        )


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """Everything an access token says, fixed before signing so it can be signed again.

    ``iat``, ``exp`` and ``jti`` are chosen once and recorded with the refresh token
    issued beside it; signing the same grant with the same RS256 key (PKCS #1 v1.5 is
    deterministic) gives the identical token, which the refresh grace window relies on.
    """

    subject: str
    client: Client
    scope: tuple[str, ...]
    iat: int
    exp: int
    jti: str
    user: User | None = None


def access_lifetime(client: Client, settings: TokenSettings) -> int:
    """The client's lifetime, never above the server's: key retention is sized by it."""
    default = settings.access_token_lifetime
    own = client.access_token_lifetime
    return default if own is None else max(1, min(own, default))


def _audience(client: Client) -> str | list[str]:
    if not client.audiences:
        # RFC 9068 requires aud; a client registered without one is a configuration error,
        # and a token valid "for anyone" is the thing not to issue.
        raise UnauthorizedClient("The client has no audience to issue tokens for.")
    audiences = list(client.audiences)
    return audiences[0] if len(audiences) == 1 else audiences


def access_claims(grant: AccessGrant, issuer: str) -> dict[str, Any]:
    """RFC 9068 section 2.2 claims, in a fixed order (the signature covers the bytes)."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": grant.subject,
        "aud": _audience(grant.client),
        "exp": grant.exp,
        "iat": grant.iat,
        "jti": grant.jti,
        "client_id": grant.client.client_id,
    }
    if grant.scope:  # RFC 9068 section 2.2.3: a scope claim when there is a scope
        claims["scope"] = " ".join(grant.scope)
    if grant.user is not None:
        claims["roles"] = list(grant.user.roles)
        for name in ("name", "email"):
            value = grant.user.profile.get(name)
            if value:
                claims[name] = value
    return claims


def sign_access_token(grant: AccessGrant, key: JWK, issuer: str) -> str:
    """The compact JWS of ``grant``: header ``typ: at+jwt`` and the key's ``kid``."""
    return encode_jwt(access_claims(grant, issuer), key, alg=key.alg, typ=ACCESS_TOKEN_TYP)


def verify_access_token(
    token: str, keyring: SigningKeys, issuer: str, *, leeway: int, clock: Clock
) -> dict[str, Any] | None:
    """The claims of a valid access token this server issued, or None for anything else.

    The header's ``alg`` only picks the key set (HMAC secrets and public keys never share
    one); ``verify_jwt`` then checks everything, that ``alg`` included, against the
    algorithms those keys are bound to.
    """
    try:
        unverified = decode_unverified(token)
        alg = unverified.header.get("alg")
        # The issuer accepts its tokens for every audience, but the core refuses a token
        # with an aud when no audience is expected (RFC 7519 section 4.1.3). Expecting the
        # token's own aud is safe: verify_jwt reads it again from the signed payload.
        aud = unverified.claims.get("aud")
        if isinstance(aud, str):
            audience: list[str] = [aud]
        elif isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
            audience = aud
        else:
            return None
        if not isinstance(alg, str):
            return None
        keys = keyring.verification_keys(alg)
        algorithms = sorted({key.alg for key in keys if key.alg})
        if not algorithms:
            return None
        policy = JWTPolicy(
            algorithms=algorithms,
            issuer=issuer,
            audience=audience,
            typ=ACCESS_TOKEN_TYP,
            required_claims=("sub", "jti", "iat", "client_id"),
            leeway=leeway,
            clock=clock,
        )
        claims = verify_jwt(token, keys, policy)
    except (TokenError, ValueError):
        return None
    for name in ("sub", "jti", "client_id"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            return None
    if type(claims.get("iat")) is not int or type(claims.get("exp")) is not int:
        return None
    return claims


def derive_refresh_secret(master: MasterKey) -> bytes:
    """The key of ``successor_token``, derived from the master key for this purpose only.

    A per-process random key would not do: with several workers (or after a restart) the
    second request of a refresh race may reach a process that derives another successor
    than the one stored, and the grace window would fail exactly when it is needed.
    The label separates this key from the sealing use of the master key.
    """
    text = master.to_text()
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return hmac.new(raw, _REFRESH_LABEL, hashlib.sha256).digest()


def successor_token(secret: bytes, token: str) -> str:
    """The refresh token that replaces ``token``: base64url(HMAC-SHA256(secret, token)).

    Deterministic, so a repeat of the same refresh within the grace window gives the same
    new refresh token without it ever being stored in clear; unpredictable without the
    secret, so a leaked used token does not reveal its successor.
    """
    digest = hmac.new(secret, token.encode("utf-8"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def scope_tokens(scope: str) -> Sequence[str]:
    """The tokens of a stored space-separated scope."""
    return tuple(token for token in scope.split(" ") if token)
