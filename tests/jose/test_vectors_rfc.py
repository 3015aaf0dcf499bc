"""Known-answer tests from the RFCs: RFC 7515 appendix A, RFC 7520 section 4, RFC 7638, RFC 8037.

The vectors are data (tests/vectors/*.json, schema in tests/vectors/README.md);
every test here is driven by them through ``parametrize``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tokensmith.clock import FixedClock
from tokensmith.jose import (
    JWK,
    SUPPORTED_ALGORITHMS,
    AlgorithmNotAllowed,
    BadSignature,
    ExpiredToken,
    InvalidClaim,
    InvalidKeySet,
    JWKSet,
    JWTPolicy,
    KeyNotFound,
    KeyUnusable,
    MalformedToken,
    sign_compact,
    verify_compact,
    verify_jwt,
)
from tokensmith.jose._b64 import b64url_decode, b64url_encode

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
NOW_2026 = 1_767_225_600  # conftest.NOW: long after every RFC JWT's exp


def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


RFC7515 = _load("rfc7515.json")["vectors"]
RFC7520_FILE = _load("rfc7520.json")
RFC7520 = RFC7520_FILE["vectors"]
RFC7520_JSON = RFC7520_FILE["json_serialization"]
RFC7638 = _load("rfc7638.json")["vectors"]
RFC8037 = _load("rfc8037.json")["vectors"]

COMPACT = RFC7515 + RFC7520 + RFC8037
# RFC 7520 4.5 is "valid" only with its payload supplied out of band; it has its own tests.
VALID = [v for v in COMPACT if v["expect"] == "valid" and "detached_payload_b64" not in v]
DETACHED = [v for v in COMPACT if "detached_payload_b64" in v]
INVALID = [v for v in COMPACT if v["expect"] == "invalid"]
JWTS = [v for v in VALID if v["is_jwt"]]


def _params(vectors: list[dict[str, Any]]) -> list[Any]:
    return [pytest.param(v, id=v["id"]) for v in vectors]


def _signing_key(v: dict[str, Any]) -> dict[str, Any] | None:
    """The members of a key that can sign the vector: its private JWK, or the HMAC secret."""
    if "private_jwk" in v:
        return v["private_jwk"]
    if v["jwk"]["kty"] == "oct":
        return v["jwk"]
    return None


def _segments(token: str) -> tuple[bytes, bytes, bytes]:
    header, payload, signature = token.encode("ascii").split(b".")
    return header, payload, signature


def _sign_compact_header(header: dict[str, Any]) -> str:
    """The header text sign_compact emits: alg, then kid, then typ, compact JSON."""
    ordered = {name: header[name] for name in ("alg", "kid", "typ") if name in header}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)


def _reproducible_by_sign_compact(v: dict[str, Any]) -> bool:
    header = json.loads(v["protected_header_text"])
    return (
        v["deterministic"]
        and _signing_key(v) is not None
        and set(header) <= {"alg", "kid", "typ"}
        and _sign_compact_header(header) == v["protected_header_text"]
    )


DETERMINISTIC = [v for v in VALID if v["deterministic"] and _signing_key(v) is not None]
SIGN_COMPACT_EXACT = [v for v in DETERMINISTIC if _reproducible_by_sign_compact(v)]
RANDOMIZED = [v for v in VALID if not v["deterministic"] and "private_jwk" in v]


def test_vector_files_hold_what_the_tests_expect() -> None:
    # Guards the filters above: an edited vector file must not silently empty a test.
    assert len(VALID) == 9
    assert [v["id"] for v in DETACHED] == ["rfc7520-4.5"]
    assert [v["id"] for v in INVALID] == ["rfc7515-A.5"]
    assert len(JWTS) == 3
    assert {v["id"] for v in DETERMINISTIC} == {
        "rfc7515-A.1",
        "rfc7515-A.2",
        "rfc7520-4.1",
        "rfc7520-4.4",
        "rfc8037-A.4",
    }
    assert {v["id"] for v in SIGN_COMPACT_EXACT} == {
        "rfc7515-A.2",
        "rfc7520-4.1",
        "rfc7520-4.4",
        "rfc8037-A.4",
    }
    assert len(RANDOMIZED) == 4
    assert len(RFC7520_JSON) == 3


# -- valid compact vectors ----------------------------------------------------------------------


@pytest.mark.parametrize("v", _params(VALID))
def test_valid_vector_verifies_to_exact_payload_and_header(v: dict[str, Any]) -> None:
    key = JWK.from_dict(v["jwk"])
    result = verify_compact(v["token"], key, algorithms=[v["alg"]])
    assert result.payload == v["payload_text"].encode("utf-8")
    assert result.header == json.loads(v["protected_header_text"])
    assert result.key is key
    # The vector's texts are the exact bytes that were signed (CRLFs included).
    header, payload, _ = _segments(v["token"])
    assert b64url_decode(header) == v["protected_header_text"].encode("utf-8")
    assert b64url_decode(payload) == v["payload_text"].encode("utf-8")


@pytest.mark.parametrize("v", _params(VALID))
def test_valid_vector_verifies_through_a_key_set(v: dict[str, Any]) -> None:
    key = JWK.from_dict(v["jwk"])
    result = verify_compact(v["token"], JWKSet([key]), algorithms=[v["alg"]])
    assert result.key is key


@pytest.mark.parametrize("v", _params(VALID))
def test_valid_vector_refused_when_alg_not_allowed(v: dict[str, Any]) -> None:
    others = sorted(SUPPORTED_ALGORITHMS - {v["alg"]})
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(v["token"], JWK.from_dict(v["jwk"]), algorithms=others)


@pytest.mark.parametrize("v", _params(VALID))
def test_valid_vector_with_flipped_signature_bit_is_refused(v: dict[str, Any]) -> None:
    header, payload, signature = _segments(v["token"])
    raw = bytearray(b64url_decode(signature))
    raw[len(raw) // 2] ^= 0x01
    forged = b".".join([header, payload, b64url_encode(bytes(raw))])
    with pytest.raises(BadSignature):
        verify_compact(forged, JWK.from_dict(v["jwk"]), algorithms=[v["alg"]])


@pytest.mark.parametrize("v", _params(JWTS))
def test_jwt_vector_verifies_at_valid_at_and_expires_later(v: dict[str, Any]) -> None:
    key = JWK.from_dict(v["jwk"])
    clock = FixedClock(v["jwt"]["valid_at"])
    policy = JWTPolicy(algorithms=[v["alg"]], clock=clock)
    assert verify_jwt(v["token"], key, policy) == v["claims"]

    clock.set(v["claims"]["exp"])  # exp itself is already too late (RFC 7519 4.1.4)
    with pytest.raises(ExpiredToken) as excinfo:
        verify_jwt(v["token"], key, policy)
    assert excinfo.value.claim == "exp"

    assert v["jwt"]["expired_at_now"]
    clock.set(NOW_2026)
    with pytest.raises(ExpiredToken):
        verify_jwt(v["token"], key, policy)


@pytest.mark.parametrize("v", _params(JWTS))
def test_jwt_vector_with_issuer_policy(v: dict[str, Any]) -> None:
    key = JWK.from_dict(v["jwk"])
    clock = FixedClock(v["jwt"]["valid_at"])
    assert v["claims"]["iss"] == "joe"
    accepted = JWTPolicy(algorithms=[v["alg"]], issuer="joe", clock=clock)
    assert verify_jwt(v["token"], key, accepted)["iss"] == "joe"
    refused = JWTPolicy(algorithms=[v["alg"]], issuer="jo", clock=clock)
    # Exact string equality: "jo" is a prefix of "joe", not a match (PyJWT CVE-2024-53861).
    with pytest.raises(InvalidClaim) as excinfo:
        verify_jwt(v["token"], key, refused)
    assert excinfo.value.claim == "iss"


# -- re-signing ---------------------------------------------------------------------------------


@pytest.mark.parametrize("v", _params(DETERMINISTIC))
def test_deterministic_vector_resigns_to_identical_signature(v: dict[str, Any]) -> None:
    members = _signing_key(v)
    assert members is not None
    key = JWK.from_dict(members)
    header, payload, signature = _segments(v["token"])
    signing_input = header + b"." + payload
    assert signing_input == (
        b64url_encode(v["protected_header_text"].encode("utf-8"))
        + b"."
        + b64url_encode(v["payload_text"].encode("utf-8"))
    )
    # Known-answer test of the primitive itself: sign_compact builds its own header and
    # cannot reproduce every vector's header text (RFC 7515 A.1 has CRLFs and typ first),
    # so this reaches into the key's bound signer to sign the vector's exact signing input.
    assert b64url_encode(key._signers[v["alg"]](signing_input)) == signature


@pytest.mark.parametrize("v", _params(SIGN_COMPACT_EXACT))
def test_deterministic_vector_reproduced_by_sign_compact(v: dict[str, Any]) -> None:
    members = _signing_key(v)
    assert members is not None
    header = json.loads(v["protected_header_text"])
    token = sign_compact(
        v["payload_text"].encode("utf-8"),
        JWK.from_dict(members),
        alg=header["alg"],
        kid=header.get("kid"),
        include_kid="kid" in header,
        typ=header.get("typ"),
    )
    assert token == v["token"]


@pytest.mark.parametrize("v", _params(RANDOMIZED))
def test_randomized_vector_key_signs_tokens_the_public_key_verifies(v: dict[str, Any]) -> None:
    private = JWK.from_dict(v["private_jwk"])
    public = JWK.from_dict(v["jwk"])
    assert not public.is_private
    assert private.thumbprint() == public.thumbprint()
    payload = v["payload_text"].encode("utf-8")
    first = sign_compact(payload, private, alg=v["alg"])
    second = sign_compact(payload, private, alg=v["alg"])
    for token in (first, second):
        result = verify_compact(token, public, algorithms=[v["alg"]])
        assert result.payload == payload
        assert result.header["alg"] == v["alg"]
    # The vector's own token also verifies with the private key's public half.
    verify_compact(v["token"], private.public(), algorithms=[v["alg"]])


# -- a key whose alg member disagrees with the token ------------------------------------------

# Wycheproof carries the RFC 7520 keys with these alg members (signature tcIds 346/350 and
# 347/351; "ES521" is not a registered name). The other rows apply the same mismatch to
# the remaining families. A verifier that honours the JWK alg member must refuse.
CONFLICTING_ALG = {
    "rfc7520-4.2": "PS256",
    "rfc7520-4.3": "ES521",
    "rfc7515-A.1": "HS512",
    "rfc7515-A.2": "PS256",
    "rfc7515-A.4": "ES521",
    "rfc7520-4.1": "RS512",
    "rfc8037-A.4": "Ed25519",
}


@pytest.mark.parametrize(
    ("v", "alg_member"),
    [
        pytest.param(v, CONFLICTING_ALG[v["id"]], id=v["id"])
        for v in VALID
        if v["id"] in CONFLICTING_ALG
    ],
)
def test_key_alg_member_that_disagrees_is_key_unusable(v: dict[str, Any], alg_member: str) -> None:
    assert alg_member != v["alg"]
    bound = JWK.from_dict(dict(v["jwk"], alg=alg_member))
    with pytest.raises(KeyUnusable):
        verify_compact(v["token"], bound, algorithms=[v["alg"]])
    # Through a set: a kid selects the key, which is then unusable; without a kid the set
    # is searched by algorithm and holds no key for it.
    kid = json.loads(v["protected_header_text"]).get("kid")
    with pytest.raises(KeyUnusable if kid is not None else KeyNotFound):
        verify_compact(v["token"], JWKSet([bound]), algorithms=[v["alg"]])
    # The same key without its alg member verifies: only the binding refused it.
    unbound = JWK.from_dict({k: val for k, val in v["jwk"].items() if k != "alg"})
    assert verify_compact(v["token"], unbound, algorithms=[v["alg"]]).payload == v[
        "payload_text"
    ].encode("utf-8")


# -- refused vectors --------------------------------------------------------------------------


@pytest.mark.parametrize("v", _params(INVALID))
@pytest.mark.parametrize(
    "algorithms",
    [pytest.param([alg], id=alg) for alg in sorted(SUPPORTED_ALGORITHMS)]
    + [pytest.param(sorted(SUPPORTED_ALGORITHMS), id="all")],
)
def test_unsecured_vector_refused_for_every_algorithm_list(
    v: dict[str, Any], algorithms: list[str]
) -> None:
    assert v["alg"] == "none"
    key = JWK.from_dict(v["jwk"])
    with pytest.raises(AlgorithmNotAllowed):
        verify_compact(v["token"], key, algorithms=algorithms)
    policy = JWTPolicy(algorithms=algorithms, clock=FixedClock(v["jwt"]["valid_at"]))
    with pytest.raises(AlgorithmNotAllowed):
        verify_jwt(v["token"], key, policy)


@pytest.mark.parametrize("v", _params(INVALID))
@pytest.mark.parametrize("spelling", ["None", "NONE", "nOnE"])
def test_unsecured_vector_other_spellings_refused(v: dict[str, Any], spelling: str) -> None:
    _, payload, _ = _segments(v["token"])
    header = b64url_encode(json.dumps({"alg": spelling}).encode("ascii"))
    for signature in (b"", b"c2lnbmF0dXJl"):
        token = b".".join([header, payload, signature])
        with pytest.raises(AlgorithmNotAllowed):
            verify_compact(token, JWK.from_dict(v["jwk"]), algorithms=sorted(SUPPORTED_ALGORITHMS))


@pytest.mark.parametrize("v", _params(INVALID))
def test_none_cannot_be_allowed(v: dict[str, Any]) -> None:
    # Asking for "none" is a programmer error, not a token error.
    with pytest.raises(ValueError, match="none"):
        verify_compact(v["token"], JWK.from_dict(v["jwk"]), algorithms=["none"])
    with pytest.raises(ValueError, match="none"):
        JWTPolicy(algorithms=["RS256", "none"])


@pytest.mark.parametrize("v", _params(DETACHED))
def test_detached_payload_vector_is_refused(v: dict[str, Any]) -> None:
    # The detached form (RFC 7515 appendix F) is a compact JWS with an empty payload
    # segment. An empty payload is itself legal (Wycheproof tcId 259 is valid), so the
    # token is well formed: it is refused because the signature covers a payload that
    # is not there.
    key = JWK.from_dict(v["jwk"])
    header, payload, signature = _segments(v["token"])
    assert payload == b""
    with pytest.raises(BadSignature):
        verify_compact(v["token"], key, algorithms=[v["alg"]])
    with pytest.raises(BadSignature):
        verify_jwt(v["token"], key, JWTPolicy(algorithms=[v["alg"]]))
    # With the payload put back the signature is good: only the detachment was refused.
    attached = b".".join([header, v["detached_payload_b64"].encode("ascii"), signature])
    result = verify_compact(attached, key, algorithms=[v["alg"]])
    assert result.payload == v["payload_text"].encode("utf-8")
    # And as a JWT it carries no claims.
    with pytest.raises(MalformedToken):
        verify_jwt(attached, key, JWTPolicy(algorithms=[v["alg"]]))


def _json_serializations() -> list[Any]:
    params = []
    for v in RFC7520_JSON:
        forms = {"general": v["jws"]}
        if "flattened" in v:
            forms["flattened"] = v["flattened"]
        keys = [v["jwk"]] if "jwk" in v else v["jwks"]["keys"]
        for form, document in forms.items():
            for index, members in enumerate(keys):
                params.append(pytest.param(v, document, members, id=f"{v['id']}-{form}-key{index}"))
    return params


@pytest.mark.parametrize(("v", "document", "members"), _json_serializations())
def test_json_serialization_is_refused_as_malformed(
    v: dict[str, Any], document: dict[str, Any], members: dict[str, Any]
) -> None:
    key = JWK.from_dict(members)
    algorithms = v["alg"].split(",")
    for text in (json.dumps(document), json.dumps(document, indent=2)):
        with pytest.raises(MalformedToken):
            verify_compact(text, key, algorithms=algorithms)
        with pytest.raises(MalformedToken):
            verify_jwt(text, key, JWTPolicy(algorithms=algorithms))


def test_rfc7520_multi_signature_key_set_is_refused() -> None:
    # 4.8's set reuses one kid for the RSA and EC keys and mixes in an HMAC secret.
    (v,) = (v for v in RFC7520_JSON if "jwks" in v)
    with pytest.raises(InvalidKeySet):
        JWKSet.from_dict(v["jwks"])


# -- thumbprints -------------------------------------------------------------------------------


@pytest.mark.parametrize("v", _params(RFC7638))
def test_rfc7638_thumbprint(v: dict[str, Any]) -> None:
    key = JWK.from_dict(v["jwk"])
    assert key.thumbprint() == v["thumbprint_sha256"]
    # The thumbprint ignores optional members; the kid given in the JWK is kept.
    assert key.kid == v["jwk"]["kid"] != key.thumbprint()
    bare = {name: v["jwk"][name] for name in ("kty", "n", "e")}
    assert JWK.from_dict(bare).thumbprint() == v["thumbprint_sha256"]
    assert JWK.from_dict(bare).kid == v["thumbprint_sha256"]


@pytest.mark.parametrize("v", _params([v for v in RFC8037 if "thumbprint" in v]))
def test_rfc8037_thumbprint(v: dict[str, Any]) -> None:
    public = JWK.from_dict(v["jwk"])
    assert public.thumbprint() == v["thumbprint"]
    assert public.kid == v["thumbprint"]  # no kid member: the thumbprint is the default
    assert JWK.from_dict(v["private_jwk"]).thumbprint() == v["thumbprint"]
