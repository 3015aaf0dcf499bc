"""Verifier SDK cost per request, in process: a new token, a token seen before, and the peers.

For RS256, ES256 and EdDSA, every row verifies the same RFC 9068 access tokens:

- new-token rows cycle through a pool of distinct tokens (different ``jti``), larger than
  the SDK's verified-token cache, so every SDK verification is a cache miss (checked
  before every batch);
- ``SDK hit`` rows verify one token again and again (a client reusing its token).

Rows: the bare primitive, the raw floor, the JOSE core (``verify_jwt`` with the policy the
SDK builds, built once), the SDK (``Verifier.from_jwks``: static keys, offline;
``Verifier`` on a remote JWKS whose cache is warm; ``AsyncVerifier.from_jwks``), and PyJWT
with ``PyJWKClient`` (keys fetched once from the same local JWKS server, then PyJWT's own
caches). Each case runs one ~30 ms batch per round; the rows of one algorithm run back to
back in a shuffled order, the groups shuffled (as ``jose_bench.py``); cells are medians
of the per-batch µs per verification, ratios are taken within the run.

Run: ``make bench-verify`` (``.venv/bin/python bench/verify_bench.py``); ``--help`` for flags.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import random
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt as pyjwt

from _jose_cases import (
    AUD,
    ISS,
    TYP,
    Material,
    Rejected,
    build_material,
    floor_cases,
    primitive_cases,
)
from _jose_report import machine_info
from _jose_timing import Case, calibrate, cpu_counters, noise_report, paired_ratio, summary
from tokensmith.jose import DEFAULT_MAX_TOKEN_BYTES, JWTPolicy, TokenError, encode_jwt, verify_jwt
from tokensmith.verify import AsyncVerifier, Verifier, VerifierConfig
from tokensmith.verify.config import DEFAULT_LEEWAY, DEFAULT_REQUIRED_CLAIMS

ALGS = ("RS256", "ES256", "EdDSA")
TIMES, DASH = "\N{MULTIPLICATION SIGN}", "\N{EN DASH}"
CACHE_SIZE = 10_000  # the SDK's default token_cache_size, used as is

PRIMITIVE = "primitive"
FLOOR = "raw floor"
CORE = "core verify_jwt"
SDK = "SDK new, static keys"
SDK_REMOTE = "SDK new, remote JWKS (warm)"
SDK_ASYNC = "AsyncVerifier new, static keys"
PYJWT = "PyJWT + PyJWKClient"
HIT = "SDK hit (token seen before)"
HIT_ASYNC = "AsyncVerifier hit"
HARNESS = "harness: one Python call"
ROWS = (PRIMITIVE, FLOOR, CORE, SDK, SDK_REMOTE, SDK_ASYNC, PYJWT, HIT, HIT_ASYNC, HARNESS)
NEW_ROWS = (FLOOR, CORE, SDK, SDK_REMOTE, SDK_ASYNC, PYJWT)
SDK_NEW = (SDK, SDK_REMOTE, SDK_ASYNC)

NEW_TARGET = 1.15  # SDK verify of a new RS256 token within x1.15 of the core's
HIT_TARGET_US = 3.0  # a token seen before in under 3 µs

ROW_NOTES = {
    PRIMITIVE: "the crypto call alone (cryptography) on one token's signing input; for scale.",
    FLOOR: "the least JWT work (bench/_jose_cases.py): split, base64url-decode signature and "
    "payload, primitive verify with a prebuilt key, json.loads, exp/iss/aud checks.",
    CORE: "tokensmith.jose.verify_jwt(token, JWKSet of 2 keys looked up by kid, policy), the "
    "policy built once with the SDK's settings: algorithms [alg], issuer, audience, typ "
    "at+jwt, required sub/iat/jti/client_id, leeway 60 s.",
    SDK: "Verifier.from_jwks(the same 2 public keys, VerifierConfig(issuer, audience, "
    "algorithms=[alg])).verify(token): offline, default settings (10,000-entry token cache, "
    "full and evicting: the pool is larger); returns typed, frozen AccessClaims.",
    SDK_REMOTE: "Verifier(VerifierConfig(..., jwks_uri=http://127.0.0.1:PORT/...)) after "
    "start(): the key set was fetched once from the bench's local HTTP server (max-age 3600) "
    "and is fresh for the whole run, so no request is made while timing.",
    SDK_ASYNC: "AsyncVerifier.from_jwks(...).verify(token), the coroutine driven to its end "
    "with send(None) (it never suspends with static keys; send + StopIteration add ~0.2 µs).",
    PYJWT: "PyJWKClient(url, cache_keys=True, lifespan=3600): get_signing_key_from_jwt (parses "
    "the unverified token for kid), then jwt.decode_complete(token, key, algorithms=[alg], "
    "audience, issuer, leeway=60, require exp/iss/aud/sub/iat/jti/client_id) and the header "
    "typ compared; the JWKS fetched once, then served from PyJWT's caches.",
    HIT: "Verifier.from_jwks(...).verify(the same token every call): one dictionary lookup, "
    "exp/nbf against the clock and the (empty) denylist.",
    HIT_ASYNC: "the same with AsyncVerifier, driven with send(None).",
    HARNESS: "lambda: f(token) with f returning its argument: what the timing loop and one "
    "Python call cost, included in every row above.",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=21, help="interleaved rounds (default 21)")
    p.add_argument("--batch-ms", type=float, default=30.0, help="batch length (default 30 ms)")
    p.add_argument("--algs", default=",".join(ALGS), help=f"comma list (default {','.join(ALGS)})")
    p.add_argument(
        "--tokens",
        type=int,
        default=CACHE_SIZE + 2048,
        help=f"distinct tokens per alg; more than the cache's {CACHE_SIZE} (default %(default)s)",
    )
    p.add_argument("--quick", action="store_true", help="smoke check: 3 rounds of 10 ms batches")
    p.add_argument("--cpu", type=int, metavar="N", help="pin the process to CPU N")
    p.add_argument("--gc", action="store_true", help="leave the GC on during batches")
    p.add_argument("--seed", type=int, default=None, help="shuffle seed (default: random)")
    p.add_argument("--json", metavar="PATH", help="dump the raw per-batch samples here")
    p.add_argument("--fail-on-miss", action="store_true", help="exit 1 when a target is missed")
    p.add_argument(
        "--summarize",
        nargs="+",
        metavar="JSON",
        help="measure nothing: the key ratios of runs saved with --json, and their medians",
    )
    args = p.parse_args(argv)
    if args.summarize:
        return args
    if args.quick:
        args.rounds, args.batch_ms = 3, 10.0
    args.algs = [a for a in args.algs.split(",") if a]
    if set(args.algs) - set(ALGS):
        p.error(f"unknown algorithms {sorted(set(args.algs) - set(ALGS))}; choose from {ALGS}")
    if args.tokens <= CACHE_SIZE:
        p.error(f"--tokens must exceed the cache size {CACHE_SIZE}, or SDK rows would hit")
    if args.rounds < 1 or args.batch_ms <= 0:
        p.error("--rounds and --batch-ms must be positive")
    return args


# -- the JWKS the remote rows fetch -------------------------------------------------------


class JWKSServer:
    """A local HTTP server thread answering GET /jwks/<alg>.json; counts every request."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        self.hits: dict[str, int] = {}
        docs, hits = documents, self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits[self.path] = hits.get(self.path, 0) + 1
                body = docs.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "public, max-age=3600")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- tokens and cases ---------------------------------------------------------------------


def make_tokens(m: Material, n: int, now: int) -> list[str]:
    """n distinct RFC 9068 access tokens (only jti differs), valid for a day."""
    base = {
        "iss": ISS,
        "sub": "5ba552d67",
        "aud": AUD,
        "exp": now + 86_400,
        "iat": now,
        "client_id": "s6BhdRkqt3",
        "scope": "openid profile reademail orders:read orders:write",
        "roles": ["editor", "viewer"],
    }
    key = m.ts_private
    return [encode_jwt({**base, "jti": f"{i:032x}"}, key, typ=TYP) for i in range(n)]


def bad_tokens(m: Material, now: int) -> dict[str, str]:
    """Tokens every row must refuse."""
    base = {
        "iss": ISS,
        "sub": "5ba552d67",
        "aud": AUD,
        "exp": now + 3600,
        "iat": now,
        "jti": "bad",
        "client_id": "s6BhdRkqt3",
    }
    good = encode_jwt(base, m.ts_private, typ=TYP)
    head, _, sig = good.rpartition(".")
    flipped = sig[:5] + ("A" if sig[5] != "A" else "B") + sig[6:]
    return {
        "bad signature": f"{head}.{flipped}",
        "expired": encode_jwt(
            {**base, "exp": now - 3600, "iat": now - 7200}, m.ts_private, typ=TYP
        ),
        "wrong iss": encode_jwt({**base, "iss": ISS + "x"}, m.ts_private, typ=TYP),
        "wrong aud": encode_jwt({**base, "aud": AUD + "x"}, m.ts_private, typ=TYP),
        "typ JWT": encode_jwt(base, m.ts_private, typ="JWT"),
    }


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends to its end, without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("the coroutine suspended")


def sdk_config(alg: str, jwks_uri: str | None = None) -> VerifierConfig:
    return VerifierConfig(issuer=ISS, audience=AUD, algorithms=[alg], jwks_uri=jwks_uri)


def core_policy(alg: str) -> JWTPolicy:
    """What the SDK's _install builds from sdk_config(alg), built here once."""
    return JWTPolicy(
        algorithms=[alg],
        issuer=ISS,
        audience=AUD,
        typ=TYP,
        required_claims=DEFAULT_REQUIRED_CLAIMS,
        leeway=DEFAULT_LEEWAY,
        max_token_size=DEFAULT_MAX_TOKEN_BYTES,
    )


def pyjwt_verify(alg: str, url: str) -> Callable[[str], dict[str, Any]]:
    client = pyjwt.PyJWKClient(url, cache_keys=True, lifespan=3600)
    decode, get_key = pyjwt.decode_complete, client.get_signing_key_from_jwt
    options = {"require": ["exp", "iss", "aud", "sub", "iat", "jti", "client_id"]}

    def verify(token: str) -> dict[str, Any]:
        key = get_key(token)
        out = decode(
            token,
            key,
            algorithms=[alg],
            audience=AUD,
            issuer=ISS,
            leeway=DEFAULT_LEEWAY,
            options=options,  # type: ignore[arg-type]
        )
        if out["header"].get("typ") != TYP:
            raise Rejected("typ")
        payload: dict[str, Any] = out["payload"]
        return payload

    return verify


@dataclass
class Built:
    """One algorithm's verify functions (token -> claims) and what the gate needs."""

    fns: dict[str, Callable[[str], Any]]
    sdk_verifiers: dict[str, Any]  # row -> the SDK object whose cache must miss
    closers: list[Callable[[], object]]


def build(m: Material, server: JWKSServer) -> Built:
    alg = m.alg
    path = f"/jwks/{alg.lower()}.json"
    public = m.ts_keys.to_json()
    policy, keys = core_policy(alg), m.ts_keys
    sdk = Verifier.from_jwks(public, sdk_config(alg))
    remote = Verifier(sdk_config(alg, jwks_uri=server.url(path)))
    remote.start()
    sdk_async = AsyncVerifier.from_jwks(public, sdk_config(alg))
    hit = Verifier.from_jwks(public, sdk_config(alg))
    hit_async = AsyncVerifier.from_jwks(public, sdk_config(alg))
    a_verify, ah_verify = sdk_async.verify, hit_async.verify
    _, floor_verify = floor_cases(m)
    fns: dict[str, Callable[[str], Any]] = {
        FLOOR: floor_verify,
        CORE: lambda token: verify_jwt(token, keys, policy),
        SDK: sdk.verify,
        SDK_REMOTE: remote.verify,
        SDK_ASYNC: lambda token: drive(a_verify(token)),
        PYJWT: pyjwt_verify(alg, server.url(path)),
        HIT: hit.verify,
        HIT_ASYNC: lambda token: drive(ah_verify(token)),
    }
    return Built(fns, {SDK: sdk, SDK_REMOTE: remote, SDK_ASYNC: sdk_async}, [remote.close])


def gate(m: Material, built: Built, token: str, now: int) -> list[str]:
    """Every row accepts the token to the same claims and refuses every bad one."""
    problems = []
    alg = m.alg
    bad = bad_tokens(m, now)
    for row, fn in built.fns.items():
        try:
            out = fn(token)
        except Exception as exc:
            problems.append(f"{alg} {row}: refused a good token ({type(exc).__name__})")
            continue
        jti = out["jti"] if isinstance(out, dict) else out.jti
        if jti != "0" * 32:
            problems.append(f"{alg} {row}: wrong claims")
        if row == FLOOR:
            continue  # the floor checks signature, exp, iss and aud only
        for what, bad_token in bad.items():
            try:
                fn(bad_token)
            except (TokenError, Rejected, pyjwt.InvalidTokenError):
                continue
            problems.append(f"{alg} {row}: accepted a token with {what}")
    for row in (HIT, HIT_ASYNC):
        if built.fns[row](token) is not built.fns[row](token):
            problems.append(f"{alg} {row}: a repeated token is not served from the cache")
    return problems


class RotatingCase(Case):
    """A case whose calls take the next token of ``pool``, cycling; counts its calls."""

    def __init__(self, alg: str, row: str, fn: Callable[[str], Any], pool: list[str]) -> None:
        nxt = itertools.cycle(pool).__next__
        super().__init__(alg, row, "verify", lambda: fn(nxt()))
        self.pool = pool
        self.calls = 0

    def run(self, n: int) -> float:
        self.calls += n
        return super().run(n)

    def next_token(self) -> str:
        return self.pool[self.calls % len(self.pool)]


def _ident(token: str) -> str:
    return token


# -- report -------------------------------------------------------------------------------


def cell(case: Case) -> str:
    med, q1, q3 = summary(case.samples)
    return (
        f"{med:.2f} ({q1:.2f}{DASH}{q3:.2f})" if med < 10 else f"{med:.1f} ({q1:.1f}{DASH}{q3:.1f})"
    )


def ratio_cell(a: Case, b: Case) -> str:
    return f"{TIMES}{summary(a.samples)[0] / summary(b.samples)[0]:.3f} / {paired_ratio(a, b):.3f}"


def report(cases: dict[tuple[str, str], Case], algs: list[str]) -> tuple[list[str], bool]:
    lines = [
        "### median µs per verification (interquartile range over rounds)",
        "",
        "| row | " + " | ".join(algs) + " |",
        "|---|" + "---|" * len(algs),
    ]
    for row in ROWS:
        lines.append(f"| {row} | " + " | ".join(cell(cases[alg, row]) for alg in algs) + " |")
    lines += [
        "",
        "### ratios (ratio of medians / per-round paired median)",
        "",
        "| ratio | " + " | ".join(algs) + " |",
        "|---|" + "---|" * len(algs),
    ]
    for a, b in (
        (SDK, CORE),
        (SDK_REMOTE, CORE),
        (SDK_ASYNC, CORE),
        (CORE, FLOOR),
        (SDK, FLOOR),
        (PYJWT, FLOOR),
        (PYJWT, SDK),
        (FLOOR, PRIMITIVE),
    ):
        cells = " | ".join(ratio_cell(cases[alg, a], cases[alg, b]) for alg in algs)
        lines.append(f"| {a} / {b} | {cells} |")
    lines += ["", "### targets", ""]
    ok_all = True
    for alg in algs:
        for row in SDK_NEW:
            med = summary(cases[alg, row].samples)[0] / summary(cases[alg, CORE].samples)[0]
            paired = paired_ratio(cases[alg, row], cases[alg, CORE])
            ok = med <= NEW_TARGET
            target = alg == "RS256" and row == SDK
            ok_all &= ok or not target
            label = "target" if target else "same bar, reported"
            lines.append(
                f"- {alg} {row} within {TIMES}{NEW_TARGET} of the core ({label}): "
                f"{'PASS' if ok else 'MISS'}: {TIMES}{med:.3f} (paired {TIMES}{paired:.3f}); "
                f"{summary(cases[alg, row].samples)[0] - summary(cases[alg, CORE].samples)[0]:+.1f}"
                " µs per token"
            )
    for alg in algs:
        for row in (HIT, HIT_ASYNC):
            med, _, q3 = summary(cases[alg, row].samples)
            ok = med < HIT_TARGET_US
            ok_all &= ok or row != HIT
            lines.append(
                f"- {alg} {row} under {HIT_TARGET_US:g} µs"
                f"{' (target)' if row == HIT else ''}: {'PASS' if ok else 'MISS'}: "
                f"{med:.2f} µs (q3 {q3:.2f}; the harness alone "
                f"{summary(cases[alg, HARNESS].samples)[0]:.2f} µs)"
            )
    return lines, ok_all


SUMMARY = (
    (SDK, CORE),
    (SDK_REMOTE, CORE),
    (SDK_ASYNC, CORE),
    (CORE, FLOOR),
    (PYJWT, SDK),
)


def summarize(paths: list[str]) -> int:
    """Per run and over runs (median): the key ratios and the hit µs, from saved samples."""
    runs = []
    for path in paths:
        with open(path) as f:
            dump = json.load(f)
        cases: dict[tuple[str, str], Case] = {}
        for c in dump["cases"]:
            case = Case(c["alg"], c["row"], "verify", lambda: None)
            case.samples = c["samples_us"]
            cases[c["alg"], c["row"]] = case
        runs.append((path, cases))
    algs = [a for a in ALGS if (a, CORE) in runs[0][1]]
    names = [os.path.basename(path) for path, _ in runs]
    lines = [
        "| ratio (of medians / paired) | " + " | ".join(names) + f" | median of {len(runs)} runs |",
        "|---|" + "---|" * (len(runs) + 1),
    ]
    for alg in algs:
        for a, b in SUMMARY:
            values = []
            for _, cases in runs:
                x, y = cases[alg, a], cases[alg, b]
                values.append((summary(x.samples)[0] / summary(y.samples)[0], paired_ratio(x, y)))
            lines.append(_summary_row(f"{alg}: {a} / {b}", values))
    for alg in algs:
        for row in (HIT, HIT_ASYNC):
            values = [(summary(cases[alg, row].samples)[0], math.nan) for _, cases in runs]
            lines.append(_summary_row(f"{alg}: {row}, µs", values))
    print("\n".join(lines))
    return 0


def _summary_row(label: str, values: list[tuple[float, float]]) -> str:
    med = (
        statistics.median(v[0] for v in values),
        statistics.median(v[1] for v in values),
    )
    return f"| {label} | " + " | ".join(_pair(v) for v in [*values, med]) + " |"


def _pair(value: tuple[float, float]) -> str:
    ratio, paired = value
    if math.isnan(paired):
        return f"{ratio:.2f}"
    return f"{TIMES}{ratio:.3f} / {paired:.3f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.summarize:
        return summarize(args.summarize)
    warnings.simplefilter("ignore")
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    started = time.perf_counter()
    started_wall, load0 = time.time(), os.getloadavg()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    now = int(time.time())
    material = build_material(args.algs, {})
    docs = {
        f"/jwks/{alg.lower()}.json": m.ts_keys.to_json().encode() for alg, m in material.items()
    }
    server = JWKSServer(docs)
    cases: dict[tuple[str, str], Case] = {}
    sdk_objects: dict[tuple[str, str], Any] = {}
    closers: list[Callable[[], object]] = [server.close]
    problems: list[str] = []
    try:
        for alg, m in material.items():
            t = time.perf_counter()
            pool = make_tokens(m, args.tokens, now)
            print(
                f"{alg}: {len(pool)} tokens signed in {time.perf_counter() - t:.1f} s",
                file=sys.stderr,
                flush=True,
            )
            built = build(m, server)
            closers += built.closers
            problems += gate(m, built, pool[0], now)
            token0 = pool[0]
            for row, fn in built.fns.items():
                if row in NEW_ROWS:
                    cases[alg, row] = RotatingCase(alg, row, fn, pool)
                else:
                    cases[alg, row] = Case(alg, row, "verify", lambda fn=fn, t=token0: fn(t))
            sdk_objects.update({(alg, row): v for row, v in built.sdk_verifiers.items()})
            _, prim_verify = primitive_cases(m, token0)
            cases[alg, PRIMITIVE] = Case(alg, PRIMITIVE, "verify", prim_verify)
            cases[alg, HARNESS] = Case(alg, HARNESS, "verify", lambda t=token0, f=_ident: f(t))
            # Fill the SDK caches to their bound, as after a busy while: every later
            # verification of a new token evicts the oldest entry.
            for row in SDK_NEW:
                cases[alg, row].run(CACHE_SIZE + 1)
        if problems:
            print("correctness gate failed; nothing timed:", file=sys.stderr)
            for problem in problems:
                print(f"  {problem}", file=sys.stderr)
            return 2

        order = list(cases.values())
        for case in order:
            calibrate(case, args.batch_ms)
        rng = random.Random(seed)
        groups: dict[str, list[Case]] = {}
        for case in order:
            groups.setdefault(case.alg, []).append(case)
        misses_checked = 0
        counters, own_start = cpu_counters(), time.process_time()
        for r in range(args.rounds):
            group_list = list(groups.values())
            rng.shuffle(group_list)
            for group in group_list:
                rng.shuffle(group)
            for case in (c for g in group_list for c in g):
                obj = sdk_objects.get((case.alg, case.lib))
                if obj is not None:
                    # The next token is not in the cache (a miss), and the cache is full.
                    assert isinstance(case, RotatingCase)
                    tokens = obj._tokens  # the bench may look: this is not an API
                    if len(tokens) != CACHE_SIZE or case.next_token() in tokens:
                        raise RuntimeError(f"{case.lib}: the cache is not full or would hit")
                    misses_checked += 1
                if not args.gc:
                    gc.disable()
                try:
                    case.samples.append(case.run(case.batch))
                finally:
                    gc.enable()
            elapsed = time.perf_counter() - started
            print(f"round {r + 1}/{args.rounds} done, {elapsed:.0f} s", file=sys.stderr, flush=True)
        noise = noise_report(counters, time.process_time() - own_start)
        fetches = dict(server.hits)
    finally:
        for close in closers:
            close()

    wall = time.perf_counter() - started
    cmd = " ".join(["bench/verify_bench.py", *(argv if argv is not None else sys.argv[1:])])
    table_lines, ok = report(cases, args.algs)
    batches = statistics.median(c.batch for c in cases.values() if c.lib == SDK)
    lines = [
        "## Verifier SDK benchmark (in process)",
        "",
        f"- command: `.venv/bin/python {cmd.strip()}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started_wall))}; "
        f"wall time {wall:.0f} s",
        machine_info()[0],
        f"- load average at start: {', '.join(f'{x:.2f}' for x in load0)}; at end: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        noise,
        f"- {args.rounds} rounds {TIMES} {len(cases)} cases, one ~{args.batch_ms:g} ms batch per "
        "case per round; the rows of one alg back to back in a shuffled order, groups shuffled "
        f"(seed {seed}); cell = median of the per-batch µs per verification; CPU pinning: "
        f"{'CPU ' + str(args.cpu) if args.cpu is not None else 'none'}; GC "
        f"{'on' if args.gc else 'off during batches'}",
        f"- new-token rows cycle through {args.tokens} distinct tokens per alg (only jti "
        f"differs); the SDK caches ({CACHE_SIZE} entries, the default) were filled first, and "
        f"before each of {misses_checked} SDK batches the bench checked the cache was full and "
        f"the next token absent: every SDK new-token verification was a miss and an eviction "
        f"(median SDK batch: {batches:.0f} verifications)",
        f"- JWKS requests to the bench's local server over the whole run: {fetches} (the SDK "
        "remote verifier and PyJWKClient each fetched once per alg, before timing)",
        "- gate passed before timing: every row accepts a token to its claims and refuses a "
        "bad signature, an expired token, a wrong iss, a wrong aud and typ JWT (the floor: "
        "checked on the good token only); the hit rows return the very same object twice",
        "",
        *table_lines,
        "",
        "### what each row does per call",
        "",
        *[f"- **{row}**: {ROW_NOTES[row]}" for row in ROWS],
    ]
    print("\n".join(lines))
    if args.json:
        dump = {
            "command": cmd,
            "seed": seed,
            "rounds": args.rounds,
            "batch_ms": args.batch_ms,
            "machine": [machine_info()[0], noise],
            "load_at_start": load0,
            "cases": [
                {"alg": c.alg, "row": c.lib, "batch": c.batch, "samples_us": c.samples}
                for c in cases.values()
            ],
        }
        with open(args.json, "w") as f:
            json.dump(dump, f, indent=1)
    return 1 if args.fail_on_miss and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
