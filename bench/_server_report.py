"""The server benchmark's report: the table of medians over rounds, and the targets.

Every figure is the median over rounds of one run's value (req/s, p50, p99, CPU per
request); the floors are the median over rounds of each round's median per-call time.
"""

from __future__ import annotations

import importlib.metadata
import math
import platform
import shutil
import statistics
import subprocess
from collections.abc import Sequence
from typing import Any

from _server_load import Scenario

TIMES, DASH, MINUS = "\N{MULTIPLICATION SIGN}", "\N{EN DASH}", "\N{MINUS SIGN}"
RS256_TARGET = 0.70  # client_credentials RS256 req/s >= 70% of 1 / RS256 sign time
ES256_BUDGET_US = 150.0  # ES256: time per request outside the signature
JWKS_TARGET = 0.90  # JWKS req/s within 10% of /healthz req/s

Runs = dict[str, list[dict[str, float]]]  # scenario name -> one result per round


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def metric(runs: Runs, name: str, key: str) -> float:
    return med([r[key] for r in runs.get(name, [])])


def per_request_us(run: dict[str, float], key: str) -> float:
    return 1e6 * run[key] / run["requests"] if run["requests"] else float("nan")


def table(scenarios: Sequence[Scenario], runs: Runs) -> list[str]:
    lines = [
        "| scenario | server | conns | req/s | p50 ms | p99 ms | req/s range over rounds "
        "| server CPU µs/req | wrk CPU µs/req | errors |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in scenarios:
        rs = runs.get(sc.name, [])
        if not rs:
            continue
        rps = [r["rps"] for r in rs]
        lines.append(
            f"| {sc.name}: {sc.note} | {sc.server} | {sc.connections} | {med(rps):.0f} "
            f"| {metric(runs, sc.name, 'p50_us') / 1000:.2f} "
            f"| {metric(runs, sc.name, 'p99_us') / 1000:.2f} "
            f"| {min(rps):.0f}{DASH}{max(rps):.0f} "
            f"| {med([per_request_us(r, 'server_cpu_s') for r in rs]):.0f} "
            f"| {med([per_request_us(r, 'wrk_cpu_s') for r in rs]):.0f} "
            f"| {sum(int(r['errors']) for r in rs)} |"
        )
    return lines


def floor_lines(floors: dict[str, list[float]]) -> list[str]:
    out = []
    for key, label, unit in (
        ("rs256_sign_us", "raw RS256 sign (cryptography, RSA-2048 PKCS1v15 SHA-256)", "µs"),
        ("es256_sign_us", "raw ES256 sign (cryptography, P-256 ECDSA SHA-256)", "µs"),
        ("argon2_verify_us", "argon2-cffi PasswordHasher.verify, server defaults", "µs"),
    ):
        vals = floors.get(key, [])
        if vals:
            spread = ", ".join(f"{v:.0f}" for v in vals)
            out.append(f"- {label}: median {med(vals):.0f} {unit} (per round: {spread})")
    return out


def _paired(runs: Runs, name: str, floors: list[float]) -> float:
    """Median over rounds of rps x floor of the same round (cancels slow drifts)."""
    pairs = [r["rps"] * f / 1e6 for r, f in zip(runs.get(name, []), floors, strict=False)]
    return med(pairs)


def targets(runs: Runs, floors: dict[str, list[float]]) -> tuple[list[str], dict[str, Any]]:
    lines, verdicts = [], {}
    rs_sign, es_sign = med(floors.get("rs256_sign_us", [])), med(floors.get("es256_sign_us", []))

    if "cc_rs256" in runs and floors.get("rs256_sign_us"):
        ceiling = 1e6 / rs_sign
        ratio = metric(runs, "cc_rs256", "rps") / ceiling
        ok = ratio >= RS256_TARGET
        paired = _paired(runs, "cc_rs256", floors["rs256_sign_us"])
        verdicts["rs256_ceiling"] = {"ratio": ratio, "paired": paired, "pass": ok}
        lines.append(
            f"- client_credentials RS256 req/s ≥ 70% of the signing ceiling: "
            f"{'PASS' if ok else 'FAIL'}: {metric(runs, 'cc_rs256', 'rps'):.0f} req/s = "
            f"{100 * ratio:.0f}% of 1/{rs_sign:.0f} µs = {ceiling:.0f}/s "
            f"(per-round paired median {100 * paired:.0f}%)"
        )
    if "cc_es256" in runs and floors.get("es256_sign_us"):
        per_req = 1e6 / metric(runs, "cc_es256", "rps")
        outside = per_req - es_sign
        ok = outside <= ES256_BUDGET_US
        verdicts["es256_overhead"] = {"us_outside_sign": outside, "pass": ok}
        lines.append(
            f"- ES256 client_credentials, time per request outside the signature ≤ 150 µs: "
            f"{'PASS' if ok else 'FAIL'}: 1/req/s at saturation {per_req:.0f} µs {MINUS} "
            f"{es_sign:.0f} µs sign = {outside:.0f} µs ({TIMES}{outside / ES256_BUDGET_US:.1f} "
            "the budget)"
        )
        if "cc_es256_c1" in runs:
            c1 = metric(runs, "cc_es256_c1", "p50_us")
            verdicts["es256_overhead"]["c1_p50_outside_sign_us"] = c1 - es_sign
            lines.append(
                f"  - for reference, median latency at concurrency 1: {c1:.0f} µs {MINUS} "
                f"{es_sign:.0f} µs = {c1 - es_sign:.0f} µs (adds the loopback round trip "
                "and wrk's own time, which the server does not spend)"
            )
    lines += _calibration(runs, rs_sign, es_sign, verdicts)
    if "jwks" in runs and "healthz" in runs:
        ratio = metric(runs, "jwks", "rps") / metric(runs, "healthz", "rps")
        pairs = [j["rps"] / h["rps"] for j, h in zip(runs["jwks"], runs["healthz"], strict=False)]
        ok = ratio >= JWKS_TARGET
        verdicts["jwks_vs_healthz"] = {"ratio": ratio, "paired": med(pairs), "pass": ok}
        lines.append(
            f"- JWKS GET req/s within 10% of /healthz: {'PASS' if ok else 'FAIL'}: "
            f"{TIMES}{ratio:.3f} (per-round paired median {TIMES}{med(pairs):.3f})"
        )
    if "password" in runs and floors.get("argon2_verify_us"):
        argon = med(floors["argon2_verify_us"])
        latency = metric(runs, "password", "p50_us")
        share = argon / latency
        argons = floors["argon2_verify_us"]
        pairs = [a / r["p50_us"] for r, a in zip(runs["password"], argons, strict=False)]
        verdicts["argon2_share"] = {
            "share": share,
            "paired": med(pairs),
            "argon2_us": argon,
            "p50_us": latency,
        }
        lines.append(
            f"- password grant, argon2's share of the request: {100 * share:.0f}% "
            f"({argon / 1000:.0f} ms verify / {latency / 1000:.0f} ms median latency at "
            f"concurrency 1; per-round paired median {100 * med(pairs):.0f}%; reported, no target)"
        )
    return lines, verdicts


def _calibration(runs: Runs, rs_sign: float, es_sign: float, verdicts: dict[str, Any]) -> list[str]:
    """What the floor (``_token_floor.py``) reaches of each issuance target, and what the
    server spends beyond it (``1/rps`` server minus ``1/rps`` floor, paired per round)."""
    lines = []
    for alg, sign in (("rs256", rs_sign), ("es256", es_sign)):
        server, floor = runs.get(f"cc_{alg}", []), runs.get(f"floor_{alg}", [])
        if not server or not floor or math.isnan(sign):  # that sign floor was not timed
            continue
        floor_rps = med([r["rps"] for r in floor])
        beyond = med([1e6 / s["rps"] - 1e6 / f["rps"] for s, f in zip(server, floor, strict=False)])
        if alg == "rs256":
            reach = f"{100 * floor_rps * sign / 1e6:.0f}% of the signing ceiling (target ≥ 70%)"
        else:
            reach = f"{1e6 / floor_rps - sign:.0f} µs outside the signature (target ≤ 150 µs)"
        verdicts[f"floor_{alg}"] = {"rps": floor_rps, "server_beyond_floor_us": beyond}
        lines.append(
            f"- calibration, {alg.upper()}: the minimal token endpoint on the same stack "
            f"reaches {floor_rps:.0f} req/s = {reach}; the server spends {beyond:.0f} µs per "
            "request beyond it (per-round paired median)"
        )
    return lines


def versions() -> str:
    def v(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "absent"

    wrk = shutil.which("wrk")
    wrk_version = "absent"
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout or out.stderr).split("Copyright")[0].strip()
    return (
        f"- Python {platform.python_version()}; tokensmith {v('tokensmith')}, uvicorn "
        f"{v('uvicorn')} (h11 {v('h11')}, httptools {v('httptools')}, uvloop {v('uvloop')}), "
        f"starlette {v('starlette')}, SQLAlchemy {v('sqlalchemy')}, aiosqlite {v('aiosqlite')}, "
        f"cryptography {v('cryptography')}, argon2-cffi {v('argon2-cffi')}; {wrk_version}"
    )
