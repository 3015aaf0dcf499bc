"""Project Wycheproof JWS and JWK vectors, every test case through ``verify_compact``.

Upstream: google/wycheproof at commit dac1dd4729fd1f8dd9e1e9f3dce51d783da6c166 (Apache-2.0,
see tests/vectors/wycheproof/LICENSE). A test's key is its group's ``public`` member when
present, else ``private``: one JWK in the signature file, a JWK Set in the key file. A key
that fails to import counts as the vector being refused.

A few upstream labels are ones a strict verifier legitimately disagrees with
(tests/vectors/README.md); ``DISAGREEMENTS`` asserts our exact behaviour for each.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tokensmith.jose import (
    JWK,
    SUPPORTED_ALGORITHMS,
    BadSignature,
    JWKError,
    JWKSet,
    KeyUnusable,
    MalformedToken,
    TokenError,
    TokensmithError,
    verify_compact,
)

WYCHEPROOF = Path(__file__).resolve().parent.parent / "vectors" / "wycheproof"
ALL_ALGORITHMS = sorted(SUPPORTED_ALGORITHMS)
VALID = "valid"


def _load(name: str) -> dict[str, Any]:
    return json.loads((WYCHEPROOF / name).read_text(encoding="utf-8"))


SIGNATURE_FILE = _load("json_web_signature_test.json")
KEY_FILE = _load("json_web_key_test.json")
FILES = {"sig": SIGNATURE_FILE, "key": KEY_FILE}


def _cases() -> list[Any]:
    params = []
    for kind, document in FILES.items():
        for group in document["testGroups"]:
            for test in group["tests"]:
                comment = re.sub(r"[^A-Za-z0-9]+", "_", test["comment"]).strip("_")
                params.append(
                    pytest.param(kind, group, test, id=f"{kind}-tc{test['tcId']}-{comment}")
                )
    return params


CASES = _cases()


def _tests_by_id(kind: str) -> dict[int, dict[str, Any]]:
    return {t["tcId"]: t for g in FILES[kind]["testGroups"] for t in g["tests"]}


def run_case(kind: str, group: dict[str, Any], test: dict[str, Any]) -> TokensmithError | None:
    """Import the group's key and verify the test's token: None if it verifies, else the error.

    Only ``TokensmithError`` is caught: any other exception escapes and fails the test.
    """
    members = group.get("public", group.get("private"))
    try:
        keys: JWK | JWKSet = JWK.from_dict(members) if kind == "sig" else JWKSet.from_dict(members)
    except JWKError as exc:
        return exc
    try:
        verify_compact(test["jws"], keys, algorithms=ALL_ALGORITHMS)
    except TokenError as exc:
        return exc
    return None


# Our outcome for every upstream label we disagree with: (kind, tcId) -> expected error class
# (None: it verifies), with the reason.
DISAGREEMENTS: dict[tuple[str, int], tuple[type[TokensmithError] | None, str]] = {
    # Labelled valid, but the MAC covers the signing input without the inserted "?": no
    # verifier that checks the bytes it received can accept them. In 372 the "?" sits in the
    # header segment, which is not base64url, so the token is malformed before any MAC.
    ("sig", 372): (MalformedToken, "'?' inserted in the header; the header is not base64url"),
    # In 373 the "?" sits in the payload segment. The payload is decoded only after the
    # signature, and the MAC over the received signing input (with the "?") does not match.
    ("sig", 373): (BadSignature, "'?' inserted in the payload; the MAC does not cover it"),
    # Labelled invalid for bad "=" padding, but byte-identical to tcId 357 (valid): the
    # padding they are named for is missing upstream, so they verify like 357.
    ("sig", 367): (None, "identical to tcId 357; the '=' padding is missing upstream"),
    ("sig", 370): (None, "identical to tcId 357; the '=' padding is missing upstream"),
    # RFC 7520 figure 20 (PS384) with a key whose alg member says PS256: our verifier
    # honours the JWK alg member and refuses.
    ("sig", 346): (KeyUnusable, "PS384 token, key alg member PS256"),
    ("sig", 350): (KeyUnusable, "PS384 token, key alg member PS256 (with key_ops)"),
    # RFC 7520 figure 27 (ES512) with a key whose alg member is "ES521", not a registered
    # algorithm: the key imports (published sets must load) but is usable for nothing.
    ("sig", 347): (KeyUnusable, "ES512 token, key alg member 'ES521'"),
    ("sig", 351): (KeyUnusable, "ES512 token, key alg member 'ES521' (with key_ops)"),
    # A ROCA-weak RSA modulus (CVE-2017-15361), labelled invalid. We do not implement the
    # ROCA fingerprint test: the key is a well-formed 2048-bit RSA key and the signature is
    # mathematically valid, so it verifies. Refusing it would take the fingerprint check.
    ("key", 7): (None, "ROCA-weak modulus; no ROCA fingerprint test"),
}


def test_every_vector_is_collected() -> None:
    assert sum(1 for p in CASES if p.values[0] == "sig") == SIGNATURE_FILE["numberOfTests"] == 401
    assert sum(1 for p in CASES if p.values[0] == "key") == KEY_FILE["numberOfTests"] == 26
    ids = [p.id for p in CASES]
    assert len(set(ids)) == len(ids)


def test_disagreements_are_labelled_as_the_readme_says() -> None:
    # Each entry must really disagree with the upstream label; a changed vector file shows here.
    for (kind, tc_id), (expected, _) in DISAGREEMENTS.items():
        upstream = _tests_by_id(kind)[tc_id]["result"]
        assert (upstream == VALID) == (expected is not None), (kind, tc_id)


def test_padding_cases_are_byte_identical_to_tc357() -> None:
    tests = _tests_by_id("sig")
    assert tests[357]["result"] == VALID
    assert tests[367]["jws"] == tests[357]["jws"]
    assert tests[370]["jws"] == tests[357]["jws"]


@pytest.mark.parametrize("tc_id", [346, 347, 350, 351])
def test_rfc7520_alg_mismatch_cases_verify_without_the_alg_member(tc_id: int) -> None:
    # The refusal of 346/347/350/351 comes from the alg member alone: the signatures are good.
    (group,) = (
        g for g in SIGNATURE_FILE["testGroups"] if any(t["tcId"] == tc_id for t in g["tests"])
    )
    members = {name: value for name, value in group["public"].items() if name != "alg"}
    (test,) = group["tests"]
    verify_compact(test["jws"], JWK.from_dict(members), algorithms=ALL_ALGORITHMS)


@pytest.mark.parametrize(("kind", "group", "test"), CASES)
def test_vector(kind: str, group: dict[str, Any], test: dict[str, Any]) -> None:
    error = run_case(kind, group, test)
    disagreement = DISAGREEMENTS.get((kind, test["tcId"]))
    if disagreement is not None:
        expected, reason = disagreement
        if expected is None:
            assert error is None, f"{reason}: refused with {error!r}"
        else:
            assert type(error) is expected, reason
        return
    if test["result"] == VALID:
        assert error is None, f"valid vector refused: {error!r}"
    else:
        assert test["result"] == "invalid"
        assert isinstance(error, TokensmithError), "invalid vector verified"


def test_no_vector_raises_outside_the_error_tree() -> None:
    # The per-vector test lets a stray exception fail it; this states the property over the
    # whole corpus at once and checks the disagreements are the only ones.
    crashes = []
    disagree = set()
    for param in CASES:
        kind, group, test = param.values
        try:
            error = run_case(kind, group, test)
        except Exception as exc:
            crashes.append((param.id, repr(exc)))
            continue
        if (error is None) != (test["result"] == VALID):
            disagree.add((kind, test["tcId"]))
    assert crashes == []
    assert disagree == set(DISAGREEMENTS)
