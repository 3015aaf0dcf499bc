"""JWT sign/verify cost: tokensmith against Python peers and the raw floor, in one run.

Every (algorithm, library, operation) case runs one ~30 ms batch per round, in a
shuffled order, for R rounds; the tables report the median and interquartile range
of the per-batch microseconds per operation, and ratios to the raw floor measured
in the same run (machines are shared and noisy: only ratios measured together count).
By default the rows of one (algorithm, operation), which the ratios compare, run back
to back in a shuffled order and the groups are shuffled; --full-shuffle mixes all cases.

Run: ``make bench`` (``.venv/bin/python bench/jose_bench.py``); ``--help`` for flags.
"""

from __future__ import annotations

import argparse
import binascii
import gc
import hmac
import importlib.metadata
import itertools
import json
import os
import platform
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from tokensmith.jose import JWK, JWKSet, JWTPolicy, encode_jwt, verify_jwt

ALGS = ("HS256", "RS256", "PS256", "ES256", "EdDSA")
PRIMITIVE, FLOOR, TOKENSMITH = "primitive", "raw floor", "tokensmith"
PEERS = ("PyJWT", "joserfc", "jwcrypto", "authlib.jose")
LIBS = (PRIMITIVE, FLOOR, TOKENSMITH, *PEERS)
OPS = ("verify", "sign")
TIMES, DASH = "\N{MULTIPLICATION SIGN}", "\N{EN DASH}"  # named: ruff flags look-alikes

# RFC 9068 section 2.2 access token, with the identifiers of its example.
ISS = "https://authorization-server.example.com/"
AUD = "https://rs.example.com/"
TYP = "at+jwt"

# What each row does per call, printed with the tables.
ROW_NOTES = {
    PRIMITIVE: "the crypto call alone (hmac / cryptography) on the timed token's signing "
    "input; ES256 verify gets a prebuilt DER signature. For scale, not a target.",
    FLOOR: "verify: split, base64url-decode signature and payload, primitive verify "
    "(prebuilt key, padding, hash; ES256 R||S to DER), json.loads, exp/iss/aud; no header "
    "parse, no typ. sign: json of header and payload, base64url, primitive sign "
    "(ES256 DER to R||S).",
    TOKENSMITH: "verify_jwt(token, JWKSet of 2 keys looked up by kid, JWTPolicy(algorithms=[alg], "
    "issuer, audience, typ='at+jwt')), every strictness rule on; its per-segment header "
    "cache is warm, as in production where a key's header repeats; sign: encode_jwt(claims, "
    "JWK, typ='at+jwt'), whose header segment is cached the same way.",
    "PyJWT": "jwt.decode_complete(token, key, algorithms, audience, issuer, "
    "options={'require': [exp, iss, aud]}), then header typ compared (no second parse: "
    "decode_complete returns the header); single key, no kid lookup.",
    "joserfc": "jwt.decode(token, key, algorithms), header typ compared, prebuilt "
    "JWTClaimsRegistry(iss, aud, exp essential).validate(claims); single key.",
    "jwcrypto": "jwt.JWT(jwt=token, key, algs, check_claims={iss, aud, exp}, "
    "expected_type='JWS'), header typ compared, json.loads of the claims string; single key.",
    "authlib.jose": "JsonWebToken([alg]).decode(token, key, claims_options iss/aud/exp "
    "essential).validate(), header typ compared; single key.",
}


class Rejected(Exception):
    """A verify function refused a token (the floor's and the peers' typ checks)."""


# -- keys and claims ---------------------------------------------------------------------


@dataclass
class Material:
    """One algorithm's keys, in every library's form, and the tokens the checks use."""

    alg: str
    secret: bytes | None
    private: Any  # cryptography private key, or None for HS
    public: Any
    kid: str
    claims: dict[str, Any]
    ts_private: JWK
    ts_keys: JWKSet
    header: dict[str, str]


def make_claims(now: int) -> dict[str, Any]:
    return {
        "iss": ISS,
        "sub": "5ba552d67",
        "aud": AUD,
        "exp": now + 86_400,
        "iat": now,
        "jti": "dbe39bf3a3ba4238a513f51d6e1691c4",
        "client_id": "s6BhdRkqt3",
        "scope": "openid profile reademail orders:read orders:write",
        "roles": ["editor", "viewer"],
    }


def build_material(algs: list[str], claims: dict[str, Any]) -> dict[str, Material]:
    rsa_key = rsa_decoy = None
    if any(alg[:2] in ("RS", "PS") for alg in algs):
        # One modulus serves RS256 and PS256 (as in tests/conftest.py); a second one is the
        # decoy that makes the verifier's key set a real lookup.
        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_decoy = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    out = {}
    for alg in algs:
        secret = private = decoy = None
        if alg == "HS256":
            secret = os.urandom(32)
            ts_private = JWK.from_secret(secret, alg=alg)
            ts_decoy = JWK.from_secret(os.urandom(32), alg=alg)
        else:
            if alg in ("RS256", "PS256"):
                private, decoy = rsa_key, rsa_decoy
            elif alg == "ES256":
                private = ec.generate_private_key(ec.SECP256R1())
                decoy = ec.generate_private_key(ec.SECP256R1())
            else:
                private = ed25519.Ed25519PrivateKey.generate()
                decoy = ed25519.Ed25519PrivateKey.generate()
            ts_private = JWK(private, alg=alg, use="sig")
            ts_decoy = JWK(decoy, alg=alg, use="sig")
        ts_public = ts_private if secret is not None else ts_private.public()
        ts_decoy = ts_decoy if secret is not None else ts_decoy.public()
        kid = ts_private.kid  # the RFC 7638 thumbprint, as a JWKS would publish
        out[alg] = Material(
            alg=alg,
            secret=secret,
            private=private,
            public=private.public_key() if private is not None else None,
            kid=kid,
            claims=claims,
            ts_private=ts_private,
            ts_keys=JWKSet([ts_decoy, ts_public]),
            header={"alg": alg, "kid": kid, "typ": TYP},
        )
    return out


def b64url(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URL).decode()


_TO_URL = bytes.maketrans(b"+/", b"-_")
_FROM_URL = bytes.maketrans(b"-_", b"+/")


# -- the floor and the primitive ---------------------------------------------------------


def floor_primitives(
    m: Material,
) -> tuple[Callable[[bytes], bytes], Callable[[bytes, bytes], None]]:
    """The least sign/verify of a JWS signature: prebuilt key, padding and hash objects."""
    alg = m.alg
    if alg == "HS256":
        secret = m.secret
        digest, compare = hmac.digest, hmac.compare_digest

        def sign_hs(si: bytes) -> bytes:
            return digest(secret, si, "sha256")

        def verify_hs(si: bytes, sig: bytes) -> None:
            if not compare(digest(secret, si, "sha256"), sig):
                raise InvalidSignature

        return sign_hs, verify_hs
    sha256 = hashes.SHA256()
    if alg in ("RS256", "PS256"):
        pad = (
            padding.PKCS1v15()
            if alg == "RS256"
            else padding.PSS(mgf=padding.MGF1(sha256), salt_length=32)
        )
        rsa_sign, rsa_verify = m.private.sign, m.public.verify

        def sign_rsa(si: bytes) -> bytes:
            return rsa_sign(si, pad, sha256)

        def verify_rsa(si: bytes, sig: bytes) -> None:
            rsa_verify(sig, si, pad, sha256)

        return sign_rsa, verify_rsa
    if alg == "ES256":
        scheme = ec.ECDSA(sha256)
        ec_sign, ec_verify = m.private.sign, m.public.verify

        def sign_ec(si: bytes) -> bytes:
            r, s = decode_dss_signature(ec_sign(si, scheme))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")

        def verify_ec(si: bytes, sig: bytes) -> None:
            der = encode_dss_signature(
                int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
            )
            ec_verify(der, si, scheme)

        return sign_ec, verify_ec
    return m.private.sign, lambda si, sig: m.public.verify(sig, si)


def floor_cases(m: Material) -> tuple[Callable[[], str], Callable[[str], dict[str, Any]]]:
    prim_sign, prim_verify = floor_primitives(m)
    encode = json.JSONEncoder(separators=(",", ":")).encode
    b2a, a2b = binascii.b2a_base64, binascii.a2b_base64
    to_url, from_url = _TO_URL, _FROM_URL
    header, claims = m.header, m.claims
    loads, now = json.loads, time.time

    def b64e(data: bytes) -> bytes:
        return b2a(data, newline=False).rstrip(b"=").translate(to_url)

    def sign() -> str:
        si = b64e(encode(header).encode()) + b"." + b64e(encode(claims).encode())
        return (si + b"." + b64e(prim_sign(si))).decode()

    def verify(token: str) -> dict[str, Any]:
        raw = token.encode()
        h, p, s = raw.split(b".")
        # Non-strict decoding tolerates the surplus padding: the cheapest correct decode.
        sig = a2b(s.translate(from_url) + b"==")
        try:
            prim_verify(raw[: len(h) + len(p) + 1], sig)
        except InvalidSignature:
            raise Rejected("signature") from None
        c = loads(a2b(p.translate(from_url) + b"=="))
        if c["exp"] <= now():
            raise Rejected("exp")
        if c["iss"] != ISS:
            raise Rejected("iss")
        aud = c["aud"]
        if aud != AUD and (type(aud) is not list or AUD not in aud):
            raise Rejected("aud")
        return c

    return sign, verify


def primitive_cases(m: Material, token: str) -> tuple[Callable[[], object], Callable[[], object]]:
    prim_sign, prim_verify = floor_primitives(m)
    si_bytes = token.rpartition(".")[0].encode()
    if m.alg == "ES256":
        scheme = ec.ECDSA(hashes.SHA256())
        der = m.private.sign(si_bytes, scheme)
        ec_sign, ec_verify = m.private.sign, m.public.verify
        return (lambda: ec_sign(si_bytes, scheme)), (lambda: ec_verify(der, si_bytes, scheme))
    sig = prim_sign(si_bytes)
    return (lambda: prim_sign(si_bytes)), (lambda: prim_verify(si_bytes, sig))


# -- tokensmith and the peers ------------------------------------------------------------

Pair = tuple[Callable[[], str], Callable[[str], dict[str, Any]]]


def tokensmith_cases(m: Material) -> Pair:
    policy = JWTPolicy(algorithms=[m.alg], issuer=ISS, audience=AUD, typ=TYP)
    keys, private, claims = m.ts_keys, m.ts_private, m.claims

    def sign() -> str:
        return encode_jwt(claims, private, typ=TYP)

    def verify(token: str) -> dict[str, Any]:
        return verify_jwt(token, keys, policy)

    return sign, verify


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


# -- correctness gate --------------------------------------------------------------------


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


# -- timing ------------------------------------------------------------------------------


@dataclass
class Case:
    alg: str
    lib: str
    op: str
    fn: Callable[[], object]
    batch: int = 0
    samples: list[float] = field(default_factory=list)  # µs per op, one per batch

    def run(self, n: int) -> float:
        fn = self.fn
        start = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            fn()
        return (time.perf_counter_ns() - start) / n / 1000


def calibrate(case: Case, batch_ms: float) -> None:
    case.run(3)  # warm caches (tokensmith's header cache, peers' lazy imports)
    n = 1
    while True:
        per_op = case.run(n)
        if per_op * n >= 5_000 or n >= 1 << 20:
            break
        n *= 2
    case.batch = max(1, round(batch_ms * 1000 / per_op))


def summary(samples: list[float]) -> tuple[float, float, float]:
    if len(samples) < 2:
        return samples[0], samples[0], samples[0]
    q1, q2, q3 = statistics.quantiles(samples, n=4, method="inclusive")
    return q2, q1, q3


def spread(cases: dict[tuple[str, str, str], Case]) -> float:
    """The median over cases of (q3 - q1) / median, in percent: how noisy the run was."""
    rel = []
    for case in cases.values():
        if len(case.samples) >= 2:
            med, q1, q3 = summary(case.samples)
            rel.append(100 * (q3 - q1) / med)
    return statistics.median(rel) if rel else 0.0


# -- report ------------------------------------------------------------------------------


def machine_info() -> list[str]:
    model = "unknown"
    mem = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            mem = f", {kib / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- machine: nproc {os.cpu_count()}, {model}{mem}; {platform.platform()}",
        f"- load average at start: {load}",
    ]


def cpu_counters() -> tuple[float, float, float]:
    """(seconds busy, seconds stolen by the hypervisor, seconds in total) over all CPUs."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0, 0.0, 0.0
    hz = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    busy = user + nice + system + irq + softirq
    return busy / hz, steal / hz, (busy + idle + iowait + steal) / hz


def noise_report(start: tuple[float, float, float], own_cpu: float) -> str:
    """How much else ran during the timed part: the first thing to read when numbers move."""
    end = cpu_counters()
    busy, steal, total = (b - a for a, b in zip(start, end, strict=True))
    if total <= 0:
        return "- noise: /proc/stat unavailable"
    others = max(0.0, busy - own_cpu)
    return (
        f"- noise during the timed rounds: other processes used {100 * others / total:.0f}% "
        f"and the hypervisor stole {100 * steal / total:.0f}% of all CPU time "
        f"(this process: {100 * own_cpu / total:.0f}%)"
    )


def versions() -> list[str]:
    from cryptography.hazmat.backends.openssl import backend

    def v(dist: str) -> str:
        return importlib.metadata.version(dist)

    return [
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"cryptography {v('cryptography')} ({backend.openssl_version_text()})",
        f"- tokensmith {v('tokensmith')}, PyJWT {v('pyjwt')}, joserfc {v('joserfc')}, "
        f"jwcrypto {v('jwcrypto')}, authlib {v('authlib')}",
    ]


def cell(med: float, floor: float | None) -> str:
    ratio = f" ({TIMES}{med / floor:.2f})" if floor else ""
    return f"{med:.1f}{ratio}"


def tables(cases: dict[tuple[str, str, str], Case], algs: list[str], libs: list[str]) -> list[str]:
    out = []
    for op in OPS:
        out += [f"### {op}: median µs per token ({TIMES}ratio to the raw floor)", ""]
        out.append("| library | " + " | ".join(algs) + " |")
        out.append("|---|" + "---|" * len(algs))
        for lib in libs:
            cells = []
            for alg in algs:
                case = cases.get((alg, lib, op))
                floor = cases.get((alg, FLOOR, op))
                if case is None or not case.samples:
                    cells.append("n/a")
                    continue
                fmed = summary(floor.samples)[0] if floor and floor.samples else None
                cells.append(cell(summary(case.samples)[0], fmed))
            name = f"**{lib}**" if lib == TOKENSMITH else lib
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    out += [f"### interquartile range, µs (q1{DASH}q3), verify / sign", ""]
    out.append("| library | " + " | ".join(algs) + " |")
    out.append("|---|" + "---|" * len(algs))
    for lib in libs:
        cells = []
        for alg in algs:
            parts = []
            for op in OPS:
                case = cases.get((alg, lib, op))
                if case is None or not case.samples:
                    parts.append("n/a")
                else:
                    _, q1, q3 = summary(case.samples)
                    parts.append(f"{q1:.1f}{DASH}{q3:.1f}")
            cells.append(" / ".join(parts))
        out.append(f"| {lib} | " + " | ".join(cells) + " |")
    out.append("")
    return out


def paired_ratio(a: Case, b: Case) -> float:
    """Median over rounds of a/b within the same round: robust to drift across the run."""
    return statistics.median(x / y for x, y in zip(a.samples, b.samples, strict=True))


def targets(cases: dict[tuple[str, str, str], Case], algs: list[str]) -> tuple[list[str], int]:
    out = ["### targets", ""]
    misses = 0

    def verdict(ok: bool) -> str:
        nonlocal misses
        misses += not ok
        return "PASS" if ok else "**MISS**"

    def med(alg: str, lib: str, op: str) -> float | None:
        case = cases.get((alg, lib, op))
        return summary(case.samples)[0] if case and case.samples else None

    for alg in algs:
        ts = med(alg, TOKENSMITH, "verify")
        peers = [(m, lib) for lib in PEERS if (m := med(alg, lib, "verify")) is not None]
        if ts is None or not peers:
            continue
        best, best_lib = min(peers)
        out.append(
            f"- {alg} verify faster than every peer: {verdict(ts < best)}: tokensmith "
            f"{ts:.1f} µs vs best peer {best_lib} {best:.1f} µs ({TIMES}{ts / best:.2f})"
        )
    for op in OPS:
        for alg in algs:
            limit = limit_for(alg, op)
            ts_case = cases.get((alg, TOKENSMITH, op))
            floor_case = cases.get((alg, FLOOR, op))
            if not (ts_case and floor_case and ts_case.samples and floor_case.samples):
                continue
            ratio = summary(ts_case.samples)[0] / summary(floor_case.samples)[0]
            paired = paired_ratio(ts_case, floor_case)
            out.append(
                f"- {alg} {op} ≤ {TIMES}{limit:.2f} of the floor: {verdict(ratio <= limit)}: "
                f"{TIMES}{ratio:.3f} (per-round paired median {TIMES}{paired:.3f})"
            )
    out.append("")
    return out, misses


# -- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    p.add_argument("--batch-ms", type=float, default=30.0, help="batch length (default 30 ms)")
    p.add_argument("--algs", default=",".join(ALGS), help=f"comma list (default {','.join(ALGS)})")
    p.add_argument("--libs", default=",".join(LIBS), help="comma list of rows (floor always on)")
    p.add_argument("--quick", action="store_true", help="smoke check: 3 rounds of 10 ms batches")
    p.add_argument("--json", metavar="PATH", help="dump the raw per-batch samples here")
    p.add_argument("--cpu", type=int, metavar="N", help="pin the process to CPU N")
    p.add_argument("--gc", action="store_true", help="leave the GC on during batches")
    p.add_argument("--seed", type=int, default=None, help="shuffle seed (default: random)")
    p.add_argument(
        "--full-shuffle",
        action="store_true",
        help="shuffle all cases together (default: shuffled groups of one alg and op)",
    )
    p.add_argument("--fail-on-miss", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--summarize",
        nargs="+",
        metavar="JSON",
        help="measure nothing: tabulate tokensmith's ratios over runs saved with --json",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.batch_ms = 3, 10.0
    args.algs = [a for a in args.algs.split(",") if a]
    unknown = set(args.algs) - set(ALGS)
    if unknown:
        p.error(f"unknown algorithms {sorted(unknown)}; choose from {ALGS}")
    libs = [x for x in args.libs.split(",") if x]
    if set(libs) - set(LIBS):
        p.error(f"unknown libraries {sorted(set(libs) - set(LIBS))}; choose from {LIBS}")
    args.libs = [lib for lib in LIBS if lib in libs or lib == FLOOR]
    if args.rounds < 1 or args.batch_ms <= 0:
        p.error("--rounds and --batch-ms must be positive")
    return args


def limit_for(alg: str, op: str) -> float:
    return 1.5 if alg == "HS256" else (1.15 if op == "verify" else 1.1)


def summarize(paths: list[str]) -> int:
    """Per-run ratios of tokensmith to the floor (and to the best peer), and their median.

    One run's verdict on a ratio near its limit depends on the host's noise; the median
    over several runs does much less.
    """
    runs = []
    for path in paths:
        with open(path) as f:
            dump = json.load(f)
        cases = {
            (c["alg"], c["lib"], c["op"]): Case(
                c["alg"], c["lib"], c["op"], fn=lambda: None, samples=c["samples_us"]
            )
            for c in dump["cases"]
        }
        runs.append((os.path.basename(path), cases))
    algs = [alg for alg in ALGS if any((alg, FLOOR, "verify") in cases for _, cases in runs)]
    columns = [(op, alg) for op in OPS for alg in algs]
    lines = [
        f"### tokensmith {TIMES}floor per run: ratio of medians / per-round paired median",
        "",
        "| run | spread | " + " | ".join(f"{op} {alg}" for op, alg in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    ratios: dict[tuple[str, str], list[float]] = {col: [] for col in columns}
    paired: dict[tuple[str, str], list[float]] = {col: [] for col in columns}
    vs_peer: dict[str, list[float]] = {alg: [] for alg in algs}
    for name, cases in runs:
        cells = []
        for op, alg in columns:
            ts, floor = cases.get((alg, TOKENSMITH, op)), cases.get((alg, FLOOR, op))
            if ts is None or floor is None:
                cells.append("n/a")
                continue
            ratio = summary(ts.samples)[0] / summary(floor.samples)[0]
            pair = paired_ratio(ts, floor)
            ratios[op, alg].append(ratio)
            paired[op, alg].append(pair)
            cells.append(f"{ratio:.2f} / {pair:.2f}")
            peers = [summary(c.samples)[0] for lib in PEERS if (c := cases.get((alg, lib, op)))]
            if op == "verify" and peers:
                vs_peer[alg].append(summary(ts.samples)[0] / min(peers))
        lines.append(f"| {name} | {spread(cases):.0f}% | " + " | ".join(cells) + " |")
    med_cells = []
    for col in columns:
        if ratios[col]:
            med_cells.append(
                f"**{statistics.median(ratios[col]):.2f} / {statistics.median(paired[col]):.2f}**"
            )
        else:
            med_cells.append("n/a")
    lines += [f"| median of {len(runs)} runs | | " + " | ".join(med_cells) + " |", ""]
    lines += [f"### targets on the median over {len(runs)} runs (ratio of medians / paired)", ""]
    for alg in algs:
        if vs_peer[alg]:
            worst = max(vs_peer[alg])
            verdict = "PASS" if worst < 1 else "**MISS**"
            lines.append(
                f"- {alg} verify faster than every peer in every run: {verdict}: tokensmith "
                f"{TIMES}{statistics.median(vs_peer[alg]):.2f} of the best peer "
                f"(worst run {TIMES}{worst:.2f})"
            )
    for op, alg in columns:
        if not ratios[op, alg]:
            continue
        limit = limit_for(alg, op)
        med, pair = statistics.median(ratios[op, alg]), statistics.median(paired[op, alg])
        verdict = "PASS" if med <= limit and pair <= limit else "**MISS**"
        if (med <= limit) != (pair <= limit):
            verdict = "undecided"
        lines.append(
            f"- {alg} {op} ≤ {TIMES}{limit:.2f}: {verdict}: {TIMES}{med:.3f} / {TIMES}{pair:.3f}"
        )
    print("\n".join(lines))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarize:
        return summarize(args.summarize)
    # joserfc warns (RFC 9864 deprecation of "EdDSA") on every EdDSA sign and verify, and
    # authlib.jose warns at import; the warnings machinery still runs, only the output goes.
    warnings.simplefilter("ignore")
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    started = time.perf_counter()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)

    claims = make_claims(int(time.time()))
    material = build_material(args.algs, claims)
    cases: dict[tuple[str, str, str], Case] = {}
    problems: list[str] = []
    for alg, m in material.items():
        floor_sign, floor_verify = floor_cases(m)
        common = floor_sign()
        bad = bad_tokens(m, make_floor_signer(m))
        ts_sign, ts_verify = tokensmith_cases(m)
        if alg in ("HS256", "RS256", "EdDSA") and ts_sign() != common:
            # Deterministic signatures: the floor and tokensmith must emit the same bytes.
            problems.append(f"{alg}: tokensmith and the floor sign different tokens")
        pairs: dict[str, Pair] = {FLOOR: (floor_sign, floor_verify)}
        pairs.update({lib: PEER_BUILDERS[lib](m) for lib in args.libs if lib in PEER_BUILDERS})
        for lib, (sign, verify) in pairs.items():
            problems += check_case(m, lib, sign, verify, common, bad, ts_verify)
            cases[alg, lib, "sign"] = Case(alg, lib, "sign", sign)
            cases[alg, lib, "verify"] = Case(
                alg, lib, "verify", lambda verify=verify, common=common: verify(common)
            )
        if PRIMITIVE in args.libs:
            prim_sign, prim_verify = primitive_cases(m, common)
            cases[alg, PRIMITIVE, "sign"] = Case(alg, PRIMITIVE, "sign", prim_sign)
            cases[alg, PRIMITIVE, "verify"] = Case(alg, PRIMITIVE, "verify", prim_verify)
    if problems:
        print("correctness gate failed; nothing timed:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2

    gc_off = not args.gc
    order = list(cases.values())
    for case in order:
        calibrate(case, args.batch_ms)
    rng = random.Random(seed)
    groups: dict[tuple[str, str], list[Case]] = {}
    for case in order:
        groups.setdefault((case.alg, case.op), []).append(case)
    counters, own_start = cpu_counters(), time.process_time()
    for r in range(args.rounds):
        if args.full_shuffle:
            rng.shuffle(order)
        else:
            # Rows that are compared (one alg and op) run back to back, in a shuffled
            # order, so slow drifts of a shared host hit them alike; groups are shuffled too.
            group_list = list(groups.values())
            rng.shuffle(group_list)
            for group in group_list:
                rng.shuffle(group)
            order = [case for group in group_list for case in group]
        for case in order:
            if gc_off:
                gc.disable()
            try:
                case.samples.append(case.run(case.batch))
            finally:
                gc.enable()
        elapsed = time.perf_counter() - started
        print(f"round {r + 1}/{args.rounds} done, {elapsed:.0f} s", file=sys.stderr, flush=True)
    noise = noise_report(counters, time.process_time() - own_start)
    wall = time.perf_counter() - started

    shuffle = (
        "all cases shuffled together"
        if args.full_shuffle
        else "the rows of one alg and op run back to back in a shuffled order, groups shuffled"
    )
    cmd = " ".join(["bench/jose_bench.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        "## JOSE core benchmark",
        "",
        f"- command: `.venv/bin/python {cmd.strip()}`",
        *machine_info(),
        noise,
        f"- spread: the median case has an interquartile range of {spread(cases):.0f}% of its "
        "median (lower is quieter; when it is well above 5%, a ratio within a few percent "
        "of its limit is undecided: rerun, or raise --rounds)",
        *versions(),
        f"- {args.rounds} rounds {TIMES} {len(cases)} cases, one ~{args.batch_ms:g} ms batch per "
        f"case per round, in a shuffled order ({shuffle}; seed {seed}); cell = median of the "
        f"per-batch µs/op; wall time {wall:.0f} s",
        f"- CPU pinning: {'CPU ' + str(args.cpu) if args.cpu is not None else 'none'}; "
        f"garbage collector {'disabled during batches' if gc_off else 'left on'}; "
        "warnings suppressed (joserfc warns on every EdDSA call, authlib.jose at import)",
        "- payload: RFC 9068 access token (iss, sub, aud, exp, iat, jti, client_id, scope, "
        f"roles), {len(json.dumps(claims, separators=(',', ':')))} bytes of JSON; header "
        "alg, kid (RFC 7638 thumbprint), typ at+jwt; every verifier times the same token",
        "- gate passed before timing: every row verifies its own token and the common one to "
        "the same claims, tokensmith verifies every row's token, and every row refuses a bad "
        "signature, an expired token, a wrong iss and a wrong aud (all rows but the floor also "
        "a missing exp and typ JWT); tokensmith and the floor emit byte-identical HS256, RS256 "
        "and EdDSA tokens",
        "",
        *tables(cases, args.algs, args.libs),
    ]
    target_lines, misses = targets(cases, args.algs)
    lines += target_lines
    lines += ["### what each row does per call", ""]
    lines += [f"- **{lib}**: {ROW_NOTES[lib]}" for lib in args.libs]
    print("\n".join(lines))

    if args.json:
        dump = {
            "command": cmd,
            "seed": seed,
            "rounds": args.rounds,
            "batch_ms": args.batch_ms,
            "gc_disabled": gc_off,
            "cpu": args.cpu,
            "machine": [*machine_info(), noise],
            "versions": versions(),
            "cases": [
                {"alg": c.alg, "lib": c.lib, "op": c.op, "batch": c.batch, "samples_us": c.samples}
                for c in cases.values()
            ],
        }
        with open(args.json, "w") as f:
            json.dump(dump, f, indent=1)
    return 1 if misses and args.fail_on_miss else 0


if __name__ == "__main__":
    sys.exit(main())
