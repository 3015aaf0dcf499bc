"""``tokensmith demo``: the JOSE core in five steps, offline (a key, a token, forgeries refused)."""

from __future__ import annotations

import json

import click

from tokensmith.clock import SystemClock
from tokensmith.errors import TokenError
from tokensmith.jose import JWK, JWKSet, JWTPolicy, encode_jwt, sign_compact, verify_jwt
from tokensmith.jose._b64 import b64url_decode, b64url_encode

__all__ = ["demo"]

ISSUER = "http://127.0.0.1:8000"
AUDIENCE = "demo-api"


class _Later:
    """The wall clock shifted forward, to show expiry without sleeping."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds

    def now(self) -> float:
        return SystemClock().now() + self._seconds


def _refused(label: str, token: str, keys: JWKSet, policy: JWTPolicy) -> None:
    try:
        verify_jwt(token, keys, policy)
    except TokenError as exc:
        click.echo(f"  {label}: refused  [{exc.code}] {exc.message}")
        return
    raise SystemExit(f"demo failed: {label} was accepted")


def _with_payload(token: str, claims: dict[str, object]) -> str:
    header, _, signature = token.split(".")
    payload = b64url_encode(json.dumps(claims, separators=(",", ":")).encode()).decode()
    return f"{header}.{payload}.{signature}"


@click.command()
def demo() -> None:
    """Generate a key, sign a token, verify it, and watch forgeries get refused."""
    key = JWK.generate("RS256")
    published = JWKSet([key.public()])
    click.echo(f"1. Generated an RS256 key, kid {key.kid}")

    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "john", "roles": ["EDITOR"]}
    token = encode_jwt(claims, key, typ="at+jwt", expires_in=900, jti=True)
    click.echo("2. Signed an access token for john (role EDITOR), valid 15 minutes:")
    click.echo(f"  {token}")

    policy = JWTPolicy(algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE, typ="at+jwt")
    verified = verify_jwt(token, published, policy)
    click.echo("3. Verified with the public key set:")
    click.echo("  " + json.dumps(verified))

    click.echo("4. Forgeries and misuse:")
    _, payload, _ = token.split(".")
    forged_claims = json.loads(b64url_decode(payload.encode()))
    forged_claims["roles"] = ["ADMIN"]
    _refused("role changed to ADMIN", _with_payload(token, forged_claims), published, policy)
    none_header = b64url_encode(b'{"alg":"none","typ":"at+jwt"}').decode()
    _refused("alg none, no signature", f"{none_header}.{payload}.", published, policy)
    # Signed by the real key, so only the strict JSON parser stands in the way:
    # Python's json would keep the last "roles" and hand out ADMIN.
    duplicate = b'{"iss":"%s","aud":"%s","exp":%d,"roles":["EDITOR"],"roles":["ADMIN"]}' % (
        ISSUER.encode(),
        AUDIENCE.encode(),
        verified["exp"],
    )
    _refused(
        "signed, but roles given twice",
        sign_compact(duplicate, key, typ="at+jwt"),
        published,
        policy,
    )

    later = JWTPolicy(
        algorithms=["RS256"], issuer=ISSUER, audience=AUDIENCE, typ="at+jwt", clock=_Later(901)
    )
    click.echo("5. The same token 15 minutes and 1 second later:")
    _refused("genuine but expired", token, published, later)
