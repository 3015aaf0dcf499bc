"""The peers' cases: PyJWT, joserfc, jwcrypto and authlib.jose, each in its cheapest correct
configuration, and `PEER_BUILDERS`, which maps every library row to its case builder.

Each peer is imported when its builder runs, so `--libs` leaves the others unimported.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization

from _jose_cases import (
    AUD,
    ISS,
    TOKENSMITH,
    TYP,
    Material,
    Pair,
    Rejected,
    b64url,
    tokensmith_cases,
)


def _pem(m: Material) -> tuple[bytes, bytes]:
    private = m.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = m.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def pyjwt_cases(m: Material) -> Pair:
    import jwt

    alg, claims = m.alg, m.claims
    private = m.secret if m.secret is not None else m.private
    public = m.secret if m.secret is not None else m.public
    headers = {"kid": m.kid, "typ": TYP}
    options = {"require": ["exp", "iss", "aud"]}
    encode, decode_complete = jwt.encode, jwt.decode_complete

    def sign() -> str:
        return encode(claims, private, algorithm=alg, headers=headers)

    def verify(token: str) -> dict[str, Any]:
        data = decode_complete(
            token, public, algorithms=[alg], audience=AUD, issuer=ISS, options=options
        )
        if data["header"].get("typ") != TYP:
            raise Rejected("typ")
        return data["payload"]  # type: ignore[no-any-return]

    return sign, verify


def joserfc_cases(m: Material) -> Pair:
    from joserfc import jwt
    from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

    alg, claims = m.alg, m.claims
    if m.secret is not None:
        private = public = OctKey.import_key(m.secret)
    else:
        key_cls = {"RS256": RSAKey, "PS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}[alg]
        private_pem, public_pem = _pem(m)
        private, public = key_cls.import_key(private_pem), key_cls.import_key(public_pem)
    header = dict(m.header)
    algorithms = [alg]
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISS},
        aud={"essential": True, "value": AUD},
        exp={"essential": True},
    )
    encode, decode, validate = jwt.encode, jwt.decode, registry.validate

    def sign() -> str:
        return encode(header, claims, private, algorithms=algorithms)

    def verify(token: str) -> dict[str, Any]:
        tok = decode(token, public, algorithms=algorithms)
        if tok.header.get("typ") != TYP:
            raise Rejected("typ")
        validate(tok.claims)
        return tok.claims

    return sign, verify


def jwcrypto_cases(m: Material) -> Pair:
    from jwcrypto import jwk
    from jwcrypto import jwt as jjwt

    alg, claims = m.alg, m.claims
    if m.secret is not None:
        private = public = jwk.JWK(kty="oct", k=b64url(m.secret))
    else:
        private, public = jwk.JWK.from_pyca(m.private), jwk.JWK.from_pyca(m.public)
    header = dict(m.header)
    algs = [alg]
    check_claims = {"iss": ISS, "aud": AUD, "exp": None}
    jwt_cls, loads = jjwt.JWT, json.loads

    def sign() -> str:
        tok = jwt_cls(header=header, claims=claims)
        tok.make_signed_token(private)
        return tok.serialize()  # type: ignore[no-any-return]

    def verify(token: str) -> dict[str, Any]:
        tok = jwt_cls(
            jwt=token, key=public, algs=algs, check_claims=check_claims, expected_type="JWS"
        )
        if tok.token.jose_header.get("typ") != TYP:
            raise Rejected("typ")
        # jwcrypto hands back the claims as a JSON string: parsing it is part of a verify.
        return loads(tok.claims)  # type: ignore[no-any-return]

    return sign, verify


def authlib_cases(m: Material) -> Pair:
    # authlib installs an "always" filter for its deprecation warning before warning at
    # import, overriding ours; recording the warnings keeps them off the terminal.
    with warnings.catch_warnings(record=True):
        from authlib.jose import ECKey, JsonWebToken, OctKey, OKPKey, RSAKey

    alg, claims = m.alg, m.claims
    if m.secret is not None:
        private = public = OctKey.import_key(m.secret)
    else:
        key_cls = {"RS256": RSAKey, "PS256": RSAKey, "ES256": ECKey, "EdDSA": OKPKey}[alg]
        private, public = key_cls.import_key(m.private), key_cls.import_key(m.public)
    header = dict(m.header)
    codec = JsonWebToken([alg])
    options = {
        "iss": {"essential": True, "value": ISS},
        "aud": {"essential": True, "value": AUD},
        "exp": {"essential": True},
    }
    encode, decode = codec.encode, codec.decode

    def sign() -> str:
        return encode(header, claims, private).decode()  # type: ignore[no-any-return]

    def verify(token: str) -> dict[str, Any]:
        decoded = decode(token, public, claims_options=options)
        decoded.validate()
        if decoded.header.get("typ") != TYP:
            raise Rejected("typ")
        return decoded  # type: ignore[no-any-return]

    return sign, verify


PEER_BUILDERS: dict[str, Callable[[Material], Pair]] = {
    TOKENSMITH: tokensmith_cases,
    "PyJWT": pyjwt_cases,
    "joserfc": joserfc_cases,
    "jwcrypto": jwcrypto_cases,
    "authlib.jose": authlib_cases,
}
