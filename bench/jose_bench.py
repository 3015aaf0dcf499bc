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
import gc
import json
import os
import random
import sys
import time
import warnings

from _jose_cases import (
    ALGS,
    FLOOR,
    LIBS,
    PRIMITIVE,
    Pair,
    build_material,
    floor_cases,
    make_claims,
    primitive_cases,
    tokensmith_cases,
)
from _jose_gate import bad_tokens, check_case, make_floor_signer
from _jose_peers import PEER_BUILDERS
from _jose_report import (
    ROW_NOTES,
    TIMES,
    machine_info,
    summarize,
    tables,
    targets,
    versions,
)
from _jose_timing import Case, calibrate, cpu_counters, noise_report, spread


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
