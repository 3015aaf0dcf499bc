"""The token server under load: a real ``tokensmith serve`` (one worker) driven by wrk.

Two servers run side by side on 127.0.0.1, one signing RS256 and one ES256 (the key ring
signs with the first of TOKENSMITH_SIGNING_ALGORITHMS; a client cannot choose). Each
scenario is one bounded wrk run (one thread, keep-alive connections, a separate process);
the scenarios and the in-process floors (raw RS256/ES256 signatures, argon2 verify) run
in a freshly shuffled order in each of R rounds, and the report gives medians over rounds.

Run: ``make bench-server`` (``.venv/bin/python bench/server_bench.py``); ``--help`` for flags.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

from _jose_report import machine_info
from _jose_timing import cpu_counters
from _server_load import FORM, Floors, Scenario, run_wrk, wrk_path
from _server_proc import AUDIENCE, SCOPE, BenchServer, FloorServer
from _server_report import floor_lines, table, targets, versions
from tokensmith.jose import JWKSet, JWTPolicy, TokenError, verify_jwt

# Rows that a target compares run back to back, in a shuffled order, and the groups are
# shuffled, so a slow drift of the shared host hits them alike (as jose_bench.py does).
GROUPS = {
    "discovery": ("healthz", "jwks", "jwks_304"),
    "rs256": ("cc_rs256", "cc_rs256_c1", "floor_rs256", "rs256_sign_us"),
    "es256": ("cc_es256", "cc_es256_c1", "floor_es256", "es256_sign_us"),
    "refresh": ("refresh",),
    "password": ("password", "argon2_verify_us"),
}
FLOORS = ("rs256_sign_us", "es256_sign_us", "argon2_verify_us")
FLOOR_RS256, FLOOR_ES256 = "RS256 floor", "ES256 floor"  # the servers of the floor rows


def scenarios(c: int) -> list[Scenario]:
    cc = "POST /oauth/token client_credentials"
    floor = "same request, minimal raw-ASGI token endpoint (calibration floor)"
    return [
        Scenario("healthz", "RS256", "healthz", c, "GET /healthz (baseline)"),
        Scenario("jwks", "RS256", "jwks", c, "GET /.well-known/jwks.json, 200"),
        Scenario("jwks_304", "RS256", "jwks_304", c, "same, If-None-Match: its ETag, 304"),
        Scenario("cc_rs256", "RS256", "client_credentials", c, f"{cc}, RS256"),
        Scenario("cc_rs256_c1", "RS256", "client_credentials", 1, f"{cc}, RS256"),
        Scenario("cc_es256", "ES256", "client_credentials", c, f"{cc}, ES256"),
        Scenario("cc_es256_c1", "ES256", "client_credentials", 1, f"{cc}, ES256"),
        # The calibration floor: the same request to a raw ASGI token endpoint on the same
        # uvicorn stack (_token_floor.py): what is left of a target once the stack is paid.
        Scenario("floor_rs256", FLOOR_RS256, "client_credentials", c, f"{floor}, RS256"),
        Scenario("floor_es256", FLOOR_ES256, "client_credentials", c, f"{floor}, ES256"),
        Scenario("refresh", "RS256", "refresh", c, "refresh_token grant, chained, RS256"),
        Scenario("password", "RS256", "password", 1, "password grant (argon2id), RS256"),
    ]


def round_order(chosen: list[Scenario], rng: random.Random) -> list[Scenario | str]:
    """One round: groups shuffled, members shuffled; a floor only beside a chosen row."""
    by_name = {s.name: s for s in chosen}
    groups = []
    for members in GROUPS.values():
        rows: list[Scenario | str] = [by_name[m] for m in members if m in by_name]
        if rows:
            rows += [m for m in members if m in FLOORS]
            rng.shuffle(rows)
            groups.append(rows)
    rng.shuffle(groups)
    return [item for group in groups for item in group]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=int, default=3, help="seconds per wrk run (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--connections", type=int, default=4, help="wrk connections (default 4)")
    p.add_argument("--scenarios", help="comma list of scenario names (default: all)")
    p.add_argument("--log-level", help="TOKENSMITH_LOG_LEVEL of the servers (default: theirs)")
    p.add_argument(
        "--access-log",
        choices=("true", "false"),
        help="TOKENSMITH_ACCESS_LOG of the servers (default: theirs)",
    )
    p.add_argument("--seed", type=int, help="shuffle seed (default: random)")
    p.add_argument("--json", metavar="FILE", help="write every run and the verdicts here")
    args = p.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or args.connections < 1:
        p.error("--duration, --rounds and --connections must be at least 1")
    all_names = [s.name for s in scenarios(1)]
    args.names = all_names if not args.scenarios else args.scenarios.split(",")
    if set(args.names) - set(all_names):
        p.error(f"unknown scenarios {sorted(set(args.names) - set(all_names))}; from {all_names}")
    return args


class GateFailed(Exception):
    """A request shape did not answer as expected: nothing is timed."""


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise GateFailed(what)


def gate(servers: dict[str, BenchServer], http: httpx.Client) -> str:
    """Check every request shape once before timing; returns the JWKS ETag."""
    rs = servers["RS256"]
    _need(http.get(f"{rs.base}/healthz").status_code == 200, "GET /healthz is not 200")
    jwks = http.get(f"{rs.base}/.well-known/jwks.json")
    _need(jwks.status_code == 200 and bool(jwks.json().get("keys")), "the JWKS has no keys")
    etag = jwks.headers.get("etag", "")
    again = http.get(f"{rs.base}/.well-known/jwks.json", headers={"If-None-Match": etag})
    _need(again.status_code == 304, "the JWKS with If-None-Match of its ETag is not 304")
    for name, server in servers.items():
        # The body the timed runs send (the floor takes no other), for the floors too.
        answer = http.post(
            f"{server.base}/oauth/token",
            content=f"grant_type=client_credentials&scope={SCOPE}",
            headers={"Authorization": server.basic_auth, "Content-Type": FORM},
        )
        _need(answer.status_code == 200, f"{name} client_credentials: {answer.status_code}")
        alg = server.alg
        keys = JWKSet.from_json(http.get(f"{server.base}/.well-known/jwks.json").content)
        policy = JWTPolicy(algorithms=[alg], issuer=server.base, audience=AUDIENCE, typ="at+jwt")
        try:
            verify_jwt(answer.json()["access_token"], keys, policy)
        except TokenError as exc:  # its message never holds the token
            raise GateFailed(f"{name} access token refused: {exc.code}") from None
    rs.login(http)  # the password grant works (its refresh token is dropped)
    return etag


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk_path()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    chosen = [s for s in scenarios(args.connections) if s.name in args.names]
    started, machine = time.time(), machine_info()
    runs: dict[str, list[dict[str, float]]] = {s.name: [] for s in chosen}
    floors: dict[str, list[float]] = {k: [] for k in FLOORS}
    floor = Floors()
    measure = {
        "rs256_sign_us": floor.rs256_sign_us,
        "es256_sign_us": floor.es256_sign_us,
        "argon2_verify_us": floor.argon2_verify_us,
    }
    servers: dict[str, BenchServer] = {}
    with tempfile.TemporaryDirectory(prefix="tokensmith-bench-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            for alg in sorted({s.server for s in chosen} | {"RS256"}):
                print(f"setting up the {alg} server ...", file=sys.stderr, flush=True)
                if alg in (FLOOR_RS256, FLOOR_ES256):
                    servers[alg] = FloorServer.start(alg.split()[0], tmp)
                else:
                    servers[alg] = BenchServer.start(alg, tmp, args.log_level, args.access_log)
            with httpx.Client(timeout=60) as http:
                try:
                    etag = gate(servers, http)
                except GateFailed as exc:
                    print(f"correctness gate failed; nothing timed: {exc}", file=sys.stderr)
                    return 2
                print("gate passed; warm-up (1 s per scenario)", file=sys.stderr, flush=True)
                for sc in chosen:
                    run_wrk(servers[sc.server], sc, 1, tmp, etag, http)
                counters, own0 = cpu_counters(), time.process_time()
                ours0 = sum(s.cpu() for s in servers.values())
                for r in range(args.rounds):
                    for item in round_order(chosen, rng):
                        if isinstance(item, str):
                            floors[item].append(measure[item]())
                            continue
                        result = run_wrk(servers[item.server], item, args.duration, tmp, etag, http)
                        runs[item.name].append(result)
                    elapsed = time.time() - started
                    print(f"round {r + 1}/{args.rounds} done, {elapsed:.0f} s", file=sys.stderr)
                noise = _noise(counters, own0, ours0, servers, runs)
        finally:
            for server in servers.values():
                server.stop()
    exits = {alg: s.exit_code for alg, s in servers.items()}
    target_lines, verdicts = targets(runs, floors)
    cmd = " ".join(["bench/server_bench.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        "## Token server benchmark",
        "",
        f"- command: `.venv/bin/python {cmd.strip()}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; "
        f"wall time {time.time() - started:.0f} s",
        *machine,
        f"- load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        noise,
        versions(),
        f"- {args.rounds} rounds of {len(chosen)} wrk runs ({args.duration} s each, wrk -t1, "
        "keep-alive) and the floors per round; compared rows back to back, groups and rows "
        f"shuffled (seed {seed}); cells are medians over rounds; servers: one uvicorn worker "
        f"each, log level {args.log_level or 'default'}, access log "
        f"{args.access_log or 'default'}; SIGTERM exit codes {exits}",
        "",
        *table(chosen, runs),
        "",
        "### floors (in the bench process, between the runs)",
        "",
        *floor_lines(floors),
        "",
        "### targets",
        "",
        *target_lines,
    ]
    print("\n".join(lines))
    if args.json:
        dump = {
            "command": cmd,
            "seed": seed,
            "machine": [*machine, noise],
            "args": {k: v for k, v in vars(args).items() if k != "names"},
            "scenarios": [vars(s) for s in chosen],
            "runs": runs,
            "floors": floors,
            "verdicts": verdicts,
            "exit_codes": exits,
        }
        Path(args.json).write_text(json.dumps(dump, indent=1))
    return 0


def _noise(
    start: tuple[float, float, float],
    own0: float,
    ours0: float,
    servers: dict[str, BenchServer],
    runs: dict[str, list[dict[str, float]]],
) -> str:
    """CPU used during the rounds by processes other than the bench, its servers and wrk."""
    busy0, steal0, total0 = start
    busy1, steal1, total1 = cpu_counters()
    ours = (time.process_time() - own0) + sum(s.cpu() for s in servers.values()) - ours0
    ours += sum(r["wrk_cpu_s"] for rs in runs.values() for r in rs)
    total = total1 - total0
    if total <= 0:
        return "- noise: /proc/stat unavailable"
    others = max(0.0, (busy1 - busy0) - ours)
    return (
        f"- noise during the rounds: other processes used {100 * others / total:.0f}% and the "
        f"hypervisor stole {100 * (steal1 - steal0) / total:.0f}% of all CPU time "
        f"(bench + servers + wrk: {100 * ours / total:.0f}%)"
    )


if __name__ == "__main__":
    sys.exit(main())
