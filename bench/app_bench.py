"""The example application server under load: a protected endpoint against its no-auth twin.

One server process per HTTP stack (uvicorn: h11 or httptools, asyncio or uvloop), one
worker pinned to CPU 0 (``taskset -c 0``), runs ``bench/_app_under_test.py``: the example
app (``BearerAuthMiddleware`` + ``require``) with an offline verifier (a static JWK Set, no
token server) plus ``POST /create-open``, the same handler with no dependency. A second
process per stack runs a bare FastAPI app (no middleware) for the framework's ceiling.
wrk (one thread, 64 keep-alive connections) is pinned to CPU 1 (``taskset -c 1``).

Rows, per stack:

- ``protected``: ``POST /create`` with a valid EDITOR token, the same token on every
  request (a real client reuses its token: after the first request, a cache hit);
- ``open``: ``POST /create-open`` with no token (the middleware passes it through);
- ``open+token``: ``POST /create-open`` with the same token: the middleware verifies it,
  no ``require`` dependency runs (splits the auth cost between the two);
- ``bare``: ``POST /create-open`` on the app without the middleware.

Each round runs every row once for a bounded time; the rows of one stack run back to back
in a shuffled order and the stacks are shuffled, so a drift of the shared host hits the
rows a ratio compares alike. Cells are medians over rounds.

Run: ``make bench-app`` (``.venv/bin/python bench/app_bench.py``); ``--help`` for flags.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from _app_under_test import OPEN_BY, SUB
from _jose_report import machine_info
from _jose_timing import cpu_counters
from tokensmith.jose import JWK, JWKSet, encode_jwt

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LUA = BENCH / "server_bench.lua"  # static mode: the request is built once by wrk
APP = BENCH / "_app_under_test.py"
DEFAULT_EXTRAS = ROOT / ".venv" / "bench-extras"
ISSUER = "https://auth.bench.test"
AUDIENCE = "bench-api"
TIMES, DASH = "\N{MULTIPLICATION SIGN}", "\N{EN DASH}"

RPS_TARGET = 0.85  # protected req/s >= 85% of the same app's unauthenticated req/s
P99_TARGET = 1.5  # protected p99 no worse than 1.5x the unauthenticated p99

STACKS = {  # name -> (uvicorn --http, --loop)
    "h11+asyncio": ("h11", "asyncio"),
    "httptools+asyncio": ("httptools", "asyncio"),
    "h11+uvloop": ("h11", "uvloop"),
    "httptools+uvloop": ("httptools", "uvloop"),
}
ROWS = ("protected", "open", "open+token", "bare")
ROW_NOTES = {
    "protected": "POST /create, Authorization: Bearer <the EDITOR token>: middleware verifies "
    "(cache hit), require(roles=[EDITOR, ADMIN]) checks",
    "open": "POST /create-open, no Authorization: middleware passes it through, no dependency",
    "open+token": "POST /create-open with the same token: middleware verifies, no dependency",
    "bare": "POST /create-open on FastAPI without the middleware (the framework's ceiling)",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=int, default=4, help="seconds per wrk run (default 4)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    p.add_argument(
        "--stacks",
        default=",".join(STACKS),
        help=f"comma list (default: all available of {','.join(STACKS)})",
    )
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma list (default {','.join(ROWS)})")
    p.add_argument(
        "--extras",
        type=Path,
        default=DEFAULT_EXTRAS,
        help="a directory holding uvloop and httptools, put on the servers' PYTHONPATH "
        "(default .venv/bench-extras, which `make bench-app` fills with pip --target)",
    )
    p.add_argument("--server-cpu", type=int, default=0, help="CPU of the servers (default 0)")
    p.add_argument("--wrk-cpu", type=int, default=1, help="CPU of wrk (default 1)")
    p.add_argument("--access-log", action="store_true", help="uvicorn's access log on (a file)")
    p.add_argument("--seed", type=int, help="shuffle seed (default: random)")
    p.add_argument("--json", metavar="FILE", help="write every run and the verdicts here")
    args = p.parse_args(argv)
    if args.duration < 1 or args.rounds < 1 or args.connections < 1:
        p.error("--duration, --rounds and --connections must be at least 1")
    args.stacks = [s for s in args.stacks.split(",") if s]
    args.rows = [r for r in args.rows.split(",") if r]
    if set(args.stacks) - set(STACKS):
        p.error(f"unknown stacks {sorted(set(args.stacks) - set(STACKS))}; from {list(STACKS)}")
    if set(args.rows) - set(ROWS) or not {"protected", "open"} <= set(args.rows):
        p.error(f"rows come from {list(ROWS)} and include protected and open")
    return args


# -- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (0.0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def has_module(name: str, extras: Path) -> bool:
    saved = list(sys.path)
    sys.path.insert(0, str(extras))
    try:
        return importlib.util.find_spec(name) is not None
    finally:
        sys.path[:] = saved


def module_version(dist: str, extras: Path) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        pass
    for found in importlib.metadata.distributions(name=dist, path=[str(extras)]):
        return f"{found.version} (bench extras)"
    return "absent"


@dataclass
class AppServer:
    name: str
    http: str
    loop: str
    bare: bool
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str], cpu: int, access_log: bool) -> None:
        cmd = ["taskset", "-c", str(cpu), sys.executable, str(APP), "--port", str(self.port)]
        cmd += ["--loop", self.loop, "--http", self.http]
        cmd += ["--bare"] if self.bare else []
        cmd += ["--access-log"] if access_log else []
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, cwd=ROOT)

    def wait_ready(self, http: httpx.Client, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace")[-800:]
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}): {tail}")
            try:
                if http.get(f"{self.base}/openapi.json").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout} s")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.exit_code = None if self.proc is None else self.proc.returncode
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait()


# -- tokens --------------------------------------------------------------------------------


@dataclass
class Material:
    jwks_path: Path
    token: str = field(repr=False)
    viewer: str = field(repr=False)
    expired: str = field(repr=False)
    tampered: str = field(repr=False)


def make_material(tmp: Path) -> Material:
    key, decoy = JWK.generate("RS256"), JWK.generate("RS256")
    jwks_path = tmp / "jwks.json"
    fd = os.open(jwks_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(JWKSet([decoy.public(), key.public()]).to_json())
    now = int(time.time())

    def token(roles: list[str], exp: int) -> str:
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": SUB,
            "client_id": "bench-client",
            "scope": "api read",
            "roles": roles,
            "iat": now,
            "exp": exp,
            "jti": secrets.token_hex(16),
        }
        return encode_jwt(claims, key, typ="at+jwt")

    good = token(["EDITOR"], now + 3 * 3600)
    head, _, sig = good.rpartition(".")
    tampered = f"{head}.{sig[:5]}{'A' if sig[5] != 'A' else 'B'}{sig[6:]}"
    return Material(
        jwks_path,
        good,
        token(["VIEWER"], now + 3600),
        token(["EDITOR"], now - 3600),
        tampered,
    )


# -- gate ----------------------------------------------------------------------------------


class GateFailed(Exception):
    pass


def gate(app: AppServer, bare: AppServer | None, m: Material, http: httpx.Client) -> None:
    def post(server: AppServer, path: str, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return http.post(f"{server.base}{path}", headers=headers)

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise GateFailed(f"{app.name}: {what}")

    r = post(app, "/create", m.token)
    need(r.status_code == 200 and r.json() == {"created": "ok", "by": SUB}, "EDITOR token not 200")
    r = post(app, "/create", None)
    need(r.status_code == 401 and "Bearer" in r.headers.get("www-authenticate", ""), "no token")
    for what, bad in (("expired", m.expired), ("tampered", m.tampered)):
        r = post(app, "/create", bad)
        need(r.status_code == 401 and r.json().get("error") == "invalid_token", f"{what} token")
    need(post(app, "/create", m.viewer).status_code == 403, "a VIEWER token is not 403")
    r = post(app, "/create-open", None)
    need(r.status_code == 200 and r.json() == {"created": "ok", "by": OPEN_BY}, "open route")
    need(post(app, "/create-open", m.token).status_code == 200, "open route with a token")
    need(post(app, "/create-open", m.tampered).status_code == 401, "open route, bad token")
    if bare is not None:
        r = post(bare, "/create-open", None)
        need(r.status_code == 200 and r.json() == {"created": "ok", "by": OPEN_BY}, "bare app")


# -- wrk -----------------------------------------------------------------------------------


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `make bench-app` installs it (apt-get)")
    return found


def _private_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def run_wrk(
    server: AppServer,
    path: str,
    token: str | None,
    args: argparse.Namespace,
    duration: int,
    tmp: Path,
) -> dict[str, float]:
    """One bounded wrk run (static request, built once by wrk): its summary, and CPU."""
    conf = tmp / "wrk.conf"
    headers = ["Content-Length: 0"] + ([f"Authorization: Bearer {token}"] if token else [])
    _private_file(conf, "\n".join(["POST", path, "", *headers]) + "\n")
    env = {**os.environ, "BENCH_CONF": str(conf), "BENCH_TOKENS": ""}
    cmd = ["taskset", "-c", str(args.wrk_cpu), wrk_path(), "-t1", f"-c{args.connections}"]
    cmd += [f"-d{duration}s", "--timeout", "10s", "-s", str(LUA), server.base + path]
    cpu0, kids0 = server.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    finally:
        conf.unlink(missing_ok=True)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if done.returncode != 0 or line is None:
        # wrk's output holds counts and latencies only: the token is in the 0600 file.
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    result: dict[str, float] = json.loads(line.removeprefix("BENCHJSON "))
    seconds = result["duration_us"] / 1e6
    result.update(
        rps=result["requests"] / seconds,
        server_cpu_s=server.cpu() - cpu0,
        wrk_cpu_s=(kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime),
        errors=sum(result[k] for k in result if k.startswith("err_")),
    )
    return result


# -- report --------------------------------------------------------------------------------

Runs = dict[tuple[str, str], list[dict[str, float]]]  # (stack, row) -> one result per round


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def metric(runs: Runs, key: tuple[str, str], name: str) -> float:
    return med([r[name] for r in runs.get(key, [])])


def paired(runs: Runs, a: tuple[str, str], b: tuple[str, str], name: str) -> float:
    return med([x[name] / y[name] for x, y in zip(runs[a], runs[b], strict=True)])


def table(runs: Runs, stacks: list[str], rows: list[str]) -> list[str]:
    lines = [
        "| stack | row | req/s median (min" + DASH + "max) | p50 ms | p99 ms median (min"
        f"{DASH}max) | server CPU µs/req | server CPU busy | wrk CPU µs/req | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for stack in stacks:
        for row in rows:
            rs = runs.get((stack, row), [])
            if not rs:
                continue
            rps = [r["rps"] for r in rs]
            p99 = [r["p99_us"] / 1000 for r in rs]
            cpu = med([1e6 * r["server_cpu_s"] / r["requests"] for r in rs])
            busy = med([r["server_cpu_s"] * 1e6 / r["duration_us"] for r in rs])
            wrk = med([1e6 * r["wrk_cpu_s"] / r["requests"] for r in rs])
            lines.append(
                f"| {stack} | {row} | {med(rps):,.0f} ({min(rps):,.0f}{DASH}{max(rps):,.0f}) "
                f"| {metric(runs, (stack, row), 'p50_us') / 1000:.2f} "
                f"| {med(p99):.2f} ({min(p99):.2f}{DASH}{max(p99):.2f}) | {cpu:.0f} "
                f"| {100 * busy:.0f}% | {wrk:.0f} | {sum(int(r['errors']) for r in rs)} |"
            )
    return lines


def verdicts(runs: Runs, stacks: list[str], rows: list[str]) -> tuple[list[str], dict[str, Any]]:
    lines = [
        "| stack | protected / open req/s (paired) | target ≥ 0.85 | protected / open p99 "
        "(paired) | target ≤ 1.5 | auth µs/req | open+token / open | open / bare |",
        "|---|---|---|---|---|---|---|---|",
    ]
    out: dict[str, Any] = {}
    for stack in stacks:
        p, o = (stack, "protected"), (stack, "open")
        if p not in runs or o not in runs:
            continue
        rps = metric(runs, p, "rps") / metric(runs, o, "rps")
        p99 = metric(runs, p, "p99_us") / metric(runs, o, "p99_us")
        auth_us = 1e6 / metric(runs, p, "rps") - 1e6 / metric(runs, o, "rps")
        cells = {}
        for row, label in (("open+token", "token"), ("bare", "bare")):
            if (stack, row) in runs:
                a, b = ((stack, row), o) if row == "open+token" else (o, (stack, row))
                cells[label] = metric(runs, a, "rps") / metric(runs, b, "rps")
        out[stack] = {
            "rps_ratio": rps,
            "rps_ratio_paired": paired(runs, p, o, "rps"),
            "p99_ratio": p99,
            "p99_ratio_paired": paired(runs, p, o, "p99_us"),
            "auth_us_per_request": auth_us,
            "rps_pass": rps >= RPS_TARGET,
            "p99_pass": p99 <= P99_TARGET,
            **{f"{k}_ratio": v for k, v in cells.items()},
        }
        v = out[stack]
        token_cell = f"{TIMES}{cells['token']:.3f}" if "token" in cells else "n/a"
        bare_cell = f"{TIMES}{cells['bare']:.3f}" if "bare" in cells else "n/a"
        lines.append(
            f"| {stack} | {TIMES}{rps:.3f} ({TIMES}{v['rps_ratio_paired']:.3f}) "
            f"| {'PASS' if v['rps_pass'] else 'FAIL'} "
            f"| {TIMES}{p99:.2f} ({TIMES}{v['p99_ratio_paired']:.2f}) "
            f"| {'PASS' if v['p99_pass'] else 'FAIL'} | {auth_us:.1f} "
            f"| {token_cell} | {bare_cell} |"
        )
    return lines, out


def versions(extras: Path) -> str:
    wrk = shutil.which("wrk")
    wrk_version = "absent"
    if wrk:
        out = subprocess.run([wrk, "--version"], capture_output=True, text=True, check=False)
        wrk_version = (out.stdout or out.stderr).split("Copyright")[0].strip()
    names = ("fastapi", "starlette", "uvicorn", "h11", "httptools", "uvloop", "pydantic")
    listed = ", ".join(f"{n} {module_version(n, extras)}" for n in names)
    return f"- Python {sys.version.split()[0]}; {listed}; {wrk_version}"


# -- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk_path()
    if shutil.which("taskset") is None:
        raise SystemExit("taskset (util-linux) is needed to pin the servers and wrk")
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    skipped = []
    stacks = []
    for stack in args.stacks:
        http, loop = STACKS[stack]
        missing = [m for m in (http, loop) if m in ("httptools", "uvloop")]
        missing = [m for m in missing if not has_module(m, args.extras)]
        if missing:
            skipped.append(f"{stack} (no {', '.join(missing)})")
        else:
            stacks.append(stack)
    if not stacks:
        raise SystemExit(f"no stack can run: {skipped}")
    started, load0 = time.time(), os.getloadavg()
    runs: Runs = {(s, r): [] for s in stacks for r in args.rows}
    servers: dict[tuple[str, bool], AppServer] = {}
    with tempfile.TemporaryDirectory(prefix="tokensmith-app-bench-") as tmp_name:
        tmp = Path(tmp_name)
        m = make_material(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
        env.update(
            BENCH_APP_JWKS=str(m.jwks_path), BENCH_APP_ISSUER=ISSUER, BENCH_APP_AUDIENCE=AUDIENCE
        )
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(args.extras), str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
        )
        try:
            for stack in stacks:
                http_impl, loop = STACKS[stack]
                for bare in (False, True) if "bare" in args.rows else (False,):
                    name = f"{stack}{' bare' if bare else ''}"
                    log = tmp / f"{name.replace(' ', '_').replace('+', '_')}.log"
                    server = AppServer(name, http_impl, loop, bare, free_port(), log)
                    server.start(env, args.server_cpu, args.access_log)
                    servers[stack, bare] = server
            with httpx.Client(timeout=30) as http:
                for server in servers.values():
                    server.wait_ready(http)
                try:
                    for stack in stacks:
                        gate(servers[stack, False], servers.get((stack, True)), m, http)
                except GateFailed as exc:
                    print(f"correctness gate failed; nothing timed: {exc}", file=sys.stderr)
                    return 2

            def one(stack: str, row: str, duration: int) -> dict[str, float]:
                server = servers[stack, row == "bare"]
                path = "/create" if row == "protected" else "/create-open"
                token = m.token if row in ("protected", "open+token") else None
                return run_wrk(server, path, token, args, duration, tmp)

            print("gate passed; warm-up (1 s per row)", file=sys.stderr, flush=True)
            for stack in stacks:
                for row in args.rows:
                    one(stack, row, 1)
            counters, own0 = cpu_counters(), time.process_time()
            servers0 = sum(s.cpu() for s in servers.values())
            for r in range(args.rounds):
                order = list(stacks)
                rng.shuffle(order)
                for stack in order:
                    rows = list(args.rows)
                    rng.shuffle(rows)
                    for row in rows:
                        runs[stack, row].append(one(stack, row, args.duration))
                elapsed = time.time() - started
                print(f"round {r + 1}/{args.rounds} done, {elapsed:.0f} s", file=sys.stderr)
            busy1, steal1, total1 = cpu_counters()
            ours = time.process_time() - own0
            ours += sum(s.cpu() for s in servers.values()) - servers0
            ours += sum(x["wrk_cpu_s"] for rs in runs.values() for x in rs)
        finally:
            for server in servers.values():
                server.stop()
    busy0, steal0, total0 = counters
    total = total1 - total0
    others = max(0.0, (busy1 - busy0) - ours)
    noise = (
        f"- noise during the rounds: other processes used {100 * others / total:.0f}% and the "
        f"hypervisor stole {100 * (steal1 - steal0) / total:.0f}% of all CPU time (bench + "
        f"servers + wrk: {100 * ours / total:.0f}%)"
    )
    verdict_lines, out = verdicts(runs, stacks, args.rows)
    cmd = " ".join(["bench/app_bench.py", *(argv if argv is not None else sys.argv[1:])])
    exits = {s.name: s.exit_code for s in servers.values()}
    lines = [
        "## Application server benchmark (example app, BearerAuthMiddleware + require)",
        "",
        f"- command: `.venv/bin/python {cmd.strip()}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; "
        f"wall time {time.time() - started:.0f} s",
        machine_info()[0],
        f"- load average at start: {', '.join(f'{x:.2f}' for x in load0)}; at end: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}",
        noise,
        versions(args.extras),
        f"- {args.rounds} rounds; each: every (stack, row) one wrk run of {args.duration} s "
        f"(wrk -t1 -c{args.connections}, keep-alive, pinned to CPU {args.wrk_cpu}); rows of a "
        f"stack back to back in a shuffled order, stacks shuffled (seed {seed}); cells are "
        f"medians over rounds; servers: one uvicorn worker each, pinned to CPU "
        f"{args.server_cpu}, access log {'on' if args.access_log else 'off'}; verifier offline "
        f"(AsyncVerifier.from_jwks, 2 RS256 keys, no token server); SIGTERM exit codes {exits}",
        *([f"- stacks skipped: {', '.join(skipped)}"] if skipped else []),
        "- gate passed before timing, per stack: EDITOR token 200 with the right body; no "
        "token 401 with a Bearer challenge; expired and tampered tokens 401 invalid_token; a "
        "VIEWER token 403; /create-open 200 without and with the token, 401 with a bad one; "
        "the bare app 200",
        "",
        *[f"- **{row}**: {ROW_NOTES[row]}" for row in args.rows],
        "",
        *table(runs, stacks, args.rows),
        "",
        "### verdicts (ratio of medians; per-round paired median in parentheses)",
        "",
        *verdict_lines,
        "",
        "auth µs/req = 1/(protected req/s) - 1/(open req/s): the server time auth adds to a "
        "request at saturation (one worker, one core).",
    ]
    print("\n".join(lines))
    if args.json:
        dump = {
            "command": cmd,
            "seed": seed,
            "args": {k: str(v) for k, v in vars(args).items()},
            "machine": [*machine_info(), noise],
            "runs": {f"{s}|{r}": v for (s, r), v in runs.items()},
            "verdicts": out,
            "exit_codes": exits,
        }
        Path(args.json).write_text(json.dumps(dump, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
