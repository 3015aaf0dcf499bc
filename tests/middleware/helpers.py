"""Keys, tokens and bad tokens for the middleware tests (offline verifiers, no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokensmith.jose import JWK, JWKSet, encode_jwt, new_jti
from tokensmith.verify import AsyncVerifier, Verifier, VerifierConfig

__all__ = [
    "AUDIENCE",
    "ISSUER",
    "REALM",
    "Keys",
    "assert_bare_challenge",
    "assert_forbidden",
    "assert_invalid_token",
    "async_verifier",
    "bad_tokens",
    "claims",
    "forge",
    "sync_verifier",
    "token",
]

ISSUER = "https://auth.example.test"
AUDIENCE = "https://api.example.test"
REALM = "app"

#: RFC 6750 section 3: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, backslash).
_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_INVALID_CHALLENGE = re.compile(
    r'Bearer realm="(?P<realm>[^"]*)", error="invalid_token", error_description="(?P<d>[^"]*)"'
)
_FORBIDDEN_CHALLENGE = re.compile(
    r'Bearer realm="(?P<realm>[^"]*)", error="insufficient_scope", '
    r'error_description="(?P<d>[^"]*)"'
    # A scope check names the scopes it needs (RFC 6750 section 3); a role check does not.
    r'(?:, scope="(?P<scope>[\x21\x23-\x5b\x5d-\x7e]+(?: [\x21\x23-\x5b\x5d-\x7e]+)*)")?'
)


@dataclass(frozen=True)
class Keys:
    """The issuer's signing key, a foreign key, and what a verifier is given (public only)."""

    signing: JWK
    foreign: JWK
    public: JWKSet

    def material(self) -> list[str]:
        """Every base64url key member an answer must never echo (public and private)."""
        found: list[str] = []
        for key in (self.signing, self.foreign):
            members = key.to_dict(private=True)
            found += [v for k, v in members.items() if k not in ("kty", "crv", "alg", "use")]
        return [value for value in found if isinstance(value, str) and len(value) >= 16]


def make_keys() -> Keys:
    signing = JWK.generate("ES256", kid="issuer-key-1")
    foreign = JWK.generate("ES256", kid="issuer-key-1")  # same kid, other key: a forgery
    return Keys(signing, foreign, JWKSet([signing.public()]))


def config(**overrides: Any) -> VerifierConfig:
    values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    values.update(overrides)
    return VerifierConfig(**values)


def async_verifier(keys: Keys, **overrides: Any) -> AsyncVerifier:
    return AsyncVerifier.from_jwks(keys.public, config(**overrides))


def sync_verifier(keys: Keys, **overrides: Any) -> Verifier:
    return Verifier.from_jwks(keys.public, config(**overrides))


def claims(**overrides: Any) -> dict[str, Any]:
    """An RFC 9068 access token's claims, valid now for ``ISSUER`` and ``AUDIENCE``."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-42",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 900,
        "jti": new_jti(),
        "client_id": "web",
        "scope": "read write",
        "roles": ["EDITOR"],
        "name": "John",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def token(
    keys: Keys, *, key: JWK | None = None, typ: str | None = "at+jwt", **overrides: Any
) -> str:
    """A token signed by the issuer's key (or ``key``); ``overrides`` change the claims."""
    return encode_jwt(claims(**overrides), key or keys.signing, typ=typ)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forge(header: Mapping[str, Any], payload: Mapping[str, Any], signature: bytes = b"") -> str:
    """A compact JWS assembled by hand (for what ``encode_jwt`` refuses to make)."""
    head = _b64(json.dumps(dict(header)).encode())
    body = _b64(json.dumps(dict(payload)).encode())
    return f"{head}.{body}.{_b64(signature)}"


def hs256(header: Mapping[str, Any], payload: Mapping[str, Any], secret: bytes) -> str:
    unsigned = forge(header, payload).rsplit(".", 1)[0]
    mac = hmac.new(secret, unsigned.encode("ascii"), hashlib.sha256).digest()
    return f"{unsigned}.{_b64(mac)}"


def tampered(good: str, **changes: Any) -> str:
    """``good`` with its payload changed and its signature kept."""
    head, body, signature = good.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    return f"{head}.{_b64(json.dumps(payload).encode())}.{signature}"


def bad_tokens(keys: Keys) -> dict[str, str]:
    """Every kind of bad token, by name: each must be refused 401 invalid_token."""
    now = int(time.time())
    kid = keys.signing.kid
    header = {"alg": "ES256", "typ": "at+jwt", "kid": kid}
    public_pem = keys.signing.public().to_pem()
    good = token(keys)
    return {
        "tampered": tampered(good, roles=["ADMIN"]),
        "signature_cut": good[:-4],
        "foreign_key_same_kid": token(keys, key=keys.foreign),
        "unknown_kid": encode_jwt(
            claims(), JWK.generate("ES256", kid="someone-else"), typ="at+jwt"
        ),
        # Past exp + the 60 s default leeway.
        "expired": token(keys, iat=now - 3600, exp=now - 120),
        "not_yet_valid": token(keys, nbf=now + 600),
        "wrong_issuer": token(keys, iss="https://evil.example.test"),
        "wrong_audience": token(keys, aud="https://other-api.example.test"),
        "no_audience": token(keys, aud=None),
        "wrong_typ": token(keys, typ="JWT"),
        "no_typ": token(keys, typ=None),
        "missing_jti": token(keys, jti=None),
        "roles_not_a_list": token(keys, roles="ADMIN"),
        "scope_not_a_string": token(keys, scope=["read", "write"]),
        "too_large": token(keys, padding="x" * 9000),
        "alg_none": forge({**header, "alg": "none"}, claims()),
        "alg_none_signed": forge({**header, "alg": "none"}, claims(), b"x" * 64),
        "hs256_random_secret": hs256({**header, "alg": "HS256"}, claims(), b"s" * 32),
        # Algorithm confusion: the public key's PEM text as an HMAC secret.
        "hs256_public_pem": hs256({**header, "alg": "HS256"}, claims(), public_pem),
        "jwk_in_header": forge({**header, "jwk": keys.foreign.public().to_dict()}, claims()),
        "two_segments": ".".join(good.split(".")[:2]),
        "garbage": "not-a-jwt",
    }


def assert_invalid_token(
    status: int, headers: Mapping[str, str], body: Any, text: str, secrets: list[str]
) -> str:
    """401, RFC 6750's invalid_token challenge and JSON body; nothing secret echoed."""
    assert status == 401, text
    challenge = headers["www-authenticate"]
    match = _INVALID_CHALLENGE.fullmatch(challenge)
    assert match is not None, challenge
    assert match["realm"] == REALM
    description = match["d"]
    assert description and _DESCRIPTION.fullmatch(description), description
    assert headers["content-type"].startswith("application/json")
    assert headers["cache-control"] == "no-store"
    assert body == {"error": "invalid_token", "error_description": description}
    _assert_no_secret(challenge + text, secrets)
    return description


def assert_bare_challenge(status: int, headers: Mapping[str, str], body: Any) -> None:
    """401 for a request without credentials: ``Bearer realm="..."`` and no error code."""
    assert status == 401
    assert headers["www-authenticate"] == f'Bearer realm="{REALM}"'
    assert headers["content-type"].startswith("application/json")
    assert headers["cache-control"] == "no-store"
    assert body == {"error": "unauthorized"}


def assert_forbidden(
    status: int, headers: Mapping[str, str], body: Any, text: str, secrets: list[str]
) -> str:
    assert status == 403, text
    challenge = headers["www-authenticate"]
    match = _FORBIDDEN_CHALLENGE.fullmatch(challenge)
    assert match is not None, challenge
    assert match["realm"] == REALM
    assert body == {"error": "insufficient_scope", "error_description": match["d"]}
    assert _DESCRIPTION.fullmatch(match["d"])
    _assert_no_secret(challenge + text, secrets)
    return match["d"]


def _assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, "an answer echoes a token part or key material"


def secrets_of(keys: Keys, *tokens: str) -> list[str]:
    """The strings an answer must not contain: each token, its segments, the key members."""
    found = keys.material()
    for value in tokens:
        found.append(value)
        found += [part for part in value.split(".") if len(part) >= 8]
    return found


DENIAL = {"websocket.http.response": {}}  # the ASGI extension for denial responses


async def websocket_handshake(
    app: Any, headers: Mapping[str, str], *, path: str = "/ws", extensions: dict[str, Any]
) -> list[dict[str, Any]]:
    """One WebSocket handshake over raw ASGI: the client connects, then leaves; what was sent."""
    scope: dict[str, Any] = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("app.test", 80),
        "client": ("127.0.0.1", 5000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "subprotocols": [],
        "extensions": extensions,
    }
    incoming: list[dict[str, Any]] = [{"type": "websocket.connect"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0) if incoming else {"type": "websocket.disconnect", "code": 1000}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent
