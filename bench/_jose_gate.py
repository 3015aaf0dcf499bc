"""The correctness gate run before any timing: every row must verify the good tokens to the
expected claims and refuse the bad ones (`bad_tokens`), or nothing is timed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from _jose_cases import FLOOR, Material, b64url, floor_primitives


def bad_tokens(m: Material, floor_sign_with: Callable[..., str]) -> dict[str, str]:
    """Tokens every verifier must refuse, each breaking one rule; signed with the right key."""
    c = m.claims
    good = floor_sign_with(m.header, c)
    h, p, s = good.split(".")
    # Flipping a middle character changes signature bits whatever the alphabet position.
    mid = len(s) // 2
    tampered = f"{h}.{p}.{s[:mid]}{'A' if s[mid] != 'A' else 'B'}{s[mid + 1 :]}"
    return {
        "bad signature": tampered,
        "expired": floor_sign_with(m.header, dict(c, exp=c["iat"] - 3600, iat=c["iat"] - 7200)),
        "wrong issuer": floor_sign_with(m.header, dict(c, iss="https://evil.example.com/")),
        "wrong audience": floor_sign_with(m.header, dict(c, aud="https://other.example.com/")),
        "no exp": floor_sign_with(m.header, {k: v for k, v in c.items() if k != "exp"}),
        "typ JWT": floor_sign_with(dict(m.header, typ="JWT"), c),
    }


def make_floor_signer(m: Material) -> Callable[[dict[str, str], dict[str, Any]], str]:
    prim_sign, _ = floor_primitives(m)

    def sign_with(header: dict[str, str], claims: dict[str, Any]) -> str:
        si = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
        return si + "." + b64url(prim_sign(si.encode()))

    return sign_with


def check_case(
    m: Material,
    lib: str,
    sign: Callable[[], str],
    verify: Callable[[str], dict[str, Any]],
    common: str,
    bad: dict[str, str],
    ts_verify: Callable[[str], dict[str, Any]],
) -> list[str]:
    """Return the problems found (empty when the case may be timed)."""
    problems = []
    own = sign()
    for label, token in (("its own token", own), ("the common token", common)):
        try:
            claims = verify(token)
        except Exception as exc:
            problems.append(f"{lib} {m.alg}: refused {label}: {exc!r}")
            continue
        if dict(claims) != m.claims:
            problems.append(f"{lib} {m.alg}: {label} verified to other claims")
    try:
        if ts_verify(own) != m.claims:
            problems.append(f"{lib} {m.alg}: tokensmith reads other claims from its token")
    except Exception as exc:
        problems.append(f"{lib} {m.alg}: tokensmith refuses its token: {exc!r}")
    for reason, token in bad.items():
        if lib == FLOOR and reason in ("typ JWT", "no exp"):
            continue  # the floor checks neither (see ROW_NOTES)
        try:
            verify(token)
        except Exception:
            continue
        problems.append(f"{lib} {m.alg}: accepted a token with {reason}")
    return problems
