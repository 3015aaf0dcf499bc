"""The report: machine and versions, the tables, the targets and their verdicts, what each
row does per call, and `--summarize` over several saved runs.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import statistics

from _jose_cases import ALGS, FLOOR, OPS, PEERS, PRIMITIVE, TOKENSMITH
from _jose_timing import Case, paired_ratio, spread, summary

TIMES, DASH = "\N{MULTIPLICATION SIGN}", "\N{EN DASH}"  # named: ruff flags look-alikes

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


def limit_for(alg: str, op: str) -> float:
    return 1.5 if alg == "HS256" else (1.15 if op == "verify" else 1.1)


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
