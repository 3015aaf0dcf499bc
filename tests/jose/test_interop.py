"""Interoperability with PyJWT, joserfc and jwcrypto, in both directions.

Tokens the peers sign verify here through ``verify_jwt``; tokens signed here verify
through the peers' own decode APIs with the same claims. Keys cross the boundary the
ways deployments move them: as PEM and as JWK JSON (HMAC secrets as JWK JSON and as
raw bytes), exported by one side and imported by the other.
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwk as joserfc_jwk
from joserfc import jwt as joserfc_jwt
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt

from conftest import ALGORITHMS
from tokensmith.jose import (
    JWK,
    BadSignature,
    JWKSet,
    JWTPolicy,
    decode_unverified,
    encode_jwt,
    verify_jwt,
)
from tokensmith.jose._b64 import b64url_encode

ISSUER = "https://issuer.example"
AUDIENCE = "api://tokensmith-interop"
PEER_KID = "peer-key"
LIFETIME = 600

# PyJWT knows EdDSA but not RFC 9864's "Ed25519" name; joserfc knows both.
PYJWT_ALGORITHMS = [alg for alg in ALGORITHMS if alg != "Ed25519"]
JOSERFC_ALGORITHMS = list(ALGORITHMS)
JWCRYPTO_ALGORITHMS = ["RS256", "ES256"]

# joserfc 1.8 emits a SecurityWarning for the polymorphic name "EdDSA" (deprecated by
# RFC 9864 in favour of "Ed25519"). The algorithm is still the one to interoperate on, so
# this exact warning, and only it, is ignored for the EdDSA cases.
JOSERFC_EDDSA_WARNING = pytest.mark.filterwarnings(
    "ignore:EdDSA is deprecated via RFC 9864:joserfc.errors.SecurityWarning"
)


def _transports(alg: str) -> list[str]:
    return ["jwk", "raw"] if alg.startswith("HS") else ["pem", "jwk"]


def _params(algorithms: list[str], eddsa_marks: tuple[Any, ...] = ()) -> list[Any]:
    return [
        pytest.param(
            alg, transport, id=f"{alg}-{transport}", marks=eddsa_marks if alg == "EdDSA" else ()
        )
        for alg in algorithms
        for transport in _transports(alg)
    ]


def _claims() -> dict[str, Any]:
    # Peers check exp/nbf/iat against the wall clock, so the claims are built from it.
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "nbf": now,
        "exp": now + LIFETIME,
        "scope": "read write",
        "ext": {"roles": ["admin", "ops"], "level": 3, "ratio": 0.25, "ok": True, "none": None},
        "name": "Zoë 🙂",
    }


def _policy(alg: str) -> JWTPolicy:
    return JWTPolicy(
        algorithms=[alg],
        issuer=ISSUER,
        audience=AUDIENCE,
        typ="JWT",
        required_claims=("sub", "iat", "nbf"),
    )


def _our_token(key: JWK, alg: str) -> str:
    claims = {k: v for k, v in _claims().items() if k not in ("iat", "nbf", "exp")}
    return encode_jwt(claims, key, alg=alg, expires_in=LIFETIME, not_before_in=0)


def _check_peer_token(token: str, keys: JWK | JWKSet, alg: str, claims: dict[str, Any]) -> None:
    """The peer's token verifies here to exactly its claims, and a forged payload does not."""
    assert verify_jwt(token, keys, _policy(alg)) == claims
    header = decode_unverified(token).header
    assert header["alg"] == alg
    assert header["kid"] == PEER_KID
    assert header["typ"] == "JWT"
    head, _, signature = token.split(".")
    forged_claims = dict(claims, sub="mallory")
    payload = b64url_encode(json.dumps(forged_claims).encode("utf-8")).decode("ascii")
    with pytest.raises(BadSignature):
        verify_jwt(f"{head}.{payload}.{signature}", keys, _policy(alg))


def _public_pem(crypto_key: Any) -> bytes:
    public = crypto_key.public_key() if hasattr(crypto_key, "private_bytes") else crypto_key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- PyJWT ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("alg", "transport"), _params(PYJWT_ALGORITHMS))
def test_pyjwt_signs_tokensmith_verifies(
    alg: str, transport: str, private_keys: dict[str, JWK]
) -> None:
    ours = private_keys[alg]
    algorithm = pyjwt.get_algorithm_by_name(alg)
    signing_key: Any
    if transport == "pem":
        signing_key = ours.to_pem(private=True)
        peer_key = algorithm.prepare_key(signing_key)
        imported = JWK.from_pem(_public_pem(peer_key), kid=PEER_KID)
    elif transport == "jwk":
        signing_key = pyjwt.PyJWK.from_json(ours.to_json(private=True))
        key_object = signing_key.key
        exported = algorithm.to_jwk(
            key_object if alg.startswith("HS") else key_object.public_key(), as_dict=True
        )
        imported = JWK.from_dict(dict(exported, kid=PEER_KID))
    else:
        signing_key = ours.crypto_key()
        imported = JWK.from_secret(signing_key, kid=PEER_KID)
    claims = _claims()
    token = pyjwt.encode(claims, signing_key, algorithm=alg, headers={"kid": PEER_KID})
    assert not imported.is_private or alg.startswith("HS")
    _check_peer_token(token, JWKSet([imported]), alg, claims)


@pytest.mark.parametrize(("alg", "transport"), _params(PYJWT_ALGORITHMS))
def test_tokensmith_signs_pyjwt_verifies(
    alg: str, transport: str, private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    ours = private_keys[alg]
    token = _our_token(ours, alg)
    expected = verify_jwt(token, verify_keys[alg], _policy(alg))
    peer_key: Any
    if transport == "pem":
        peer_key = ours.to_pem()
    elif transport == "jwk":
        peer_key = pyjwt.PyJWK.from_json(verify_keys[alg].to_json(private=alg.startswith("HS")))
    else:
        peer_key = ours.crypto_key()
    decoded = pyjwt.decode(
        token,
        peer_key,
        algorithms=[alg],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
    )
    assert decoded == expected
    assert pyjwt.get_unverified_header(token) == {"alg": alg, "kid": ours.kid, "typ": "JWT"}


# -- joserfc ---------------------------------------------------------------------------------


def _joserfc_key(ours: JWK, transport: str, *, private: bool) -> Any:
    if transport == "raw":
        return joserfc_jwk.OctKey.import_key(ours.crypto_key())
    if transport == "pem":
        return joserfc_jwk.import_key(ours.to_pem(private=private), ours.kty)
    text = ours.to_json(private=private or ours.kty == "oct")
    return joserfc_jwk.import_key(json.loads(text), ours.kty)


@pytest.mark.parametrize(
    ("alg", "transport"), _params(JOSERFC_ALGORITHMS, (JOSERFC_EDDSA_WARNING,))
)
def test_joserfc_signs_tokensmith_verifies(
    alg: str, transport: str, private_keys: dict[str, JWK]
) -> None:
    peer_key = _joserfc_key(private_keys[alg], transport, private=True)
    claims = _claims()
    token = joserfc_jwt.encode({"alg": alg, "kid": PEER_KID}, claims, peer_key, algorithms=[alg])
    if transport == "pem":
        imported = JWK.from_pem(peer_key.as_pem(private=False), kid=PEER_KID)
    else:
        exported = peer_key.as_dict(private=alg.startswith("HS"))
        imported = JWK.from_json(json.dumps(dict(exported, kid=PEER_KID)))
    _check_peer_token(token, JWKSet([imported]), alg, claims)


@pytest.mark.parametrize(
    ("alg", "transport"), _params(JOSERFC_ALGORITHMS, (JOSERFC_EDDSA_WARNING,))
)
def test_tokensmith_signs_joserfc_verifies(
    alg: str, transport: str, private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    ours = private_keys[alg]
    token = _our_token(ours, alg)
    expected = verify_jwt(token, verify_keys[alg], _policy(alg))
    peer_key = _joserfc_key(verify_keys[alg], transport, private=False)
    decoded = joserfc_jwt.decode(token, peer_key, algorithms=[alg])
    joserfc_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        sub={"essential": True},
        exp={"essential": True},
        nbf={"essential": True},
        iat={"essential": True},
    ).validate(decoded.claims)
    assert decoded.claims == expected
    assert decoded.header == {"alg": alg, "kid": ours.kid, "typ": "JWT"}


# -- jwcrypto --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", JWCRYPTO_ALGORITHMS)
def test_jwcrypto_signs_tokensmith_verifies(alg: str, private_keys: dict[str, JWK]) -> None:
    peer_key = jwcrypto_jwk.JWK.from_pem(private_keys[alg].to_pem(private=True))
    claims = _claims()
    signed = jwcrypto_jwt.JWT(header={"alg": alg, "kid": PEER_KID, "typ": "JWT"}, claims=claims)
    signed.make_signed_token(peer_key)
    imported = JWK.from_json(peer_key.export_public())
    _check_peer_token(signed.serialize(), imported, alg, claims)


@pytest.mark.parametrize("alg", JWCRYPTO_ALGORITHMS)
def test_tokensmith_signs_jwcrypto_verifies(
    alg: str, private_keys: dict[str, JWK], verify_keys: dict[str, JWK]
) -> None:
    token = _our_token(private_keys[alg], alg)
    expected = verify_jwt(token, verify_keys[alg], _policy(alg))
    peer_key = jwcrypto_jwk.JWK.from_json(verify_keys[alg].to_json())
    decoded = jwcrypto_jwt.JWT(
        jwt=token,
        key=peer_key,
        algs=[alg],
        expected_type="JWS",
        check_claims={"iss": ISSUER, "aud": AUDIENCE, "exp": None, "nbf": None},
    )
    assert json.loads(decoded.claims) == expected
