"""CPU instructions per request of the example app server, counted by cachegrind.

A noise-free complement to ``app_bench.py`` for shared hosts, where other tenants move
req/s by tens of percent between identical runs: the server (``_app_under_test.py``, one
uvicorn worker, the same app and rows) runs under ``valgrind --tool=cachegrind``, a client
in this process sends an exact number of requests over 64 keep-alive connections (64 in
flight, as wrk does), and the server is stopped with SIGTERM. Each (stack, row) runs twice,
with N1 and N2 requests; (instructions at N2 - instructions at N1) / (N2 - N1) is the cost
of one request in the steady state (start-up, warm-up and connection set-up cancel out).

Instructions are not time (a cache miss costs no instruction), but at saturation one
worker's req/s is the inverse of its time per request, so the ratio of instruction counts
is the req/s ratio the protected route would reach on a quiet, dedicated core, modulo the
instructions-per-cycle of each piece.

Run: ``.venv/bin/python bench/app_instructions.py`` (valgrind from Debian; about 13 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from app_bench import (
    AUDIENCE,
    DEFAULT_EXTRAS,
    ISSUER,
    ROOT,
    ROW_NOTES,
    ROWS,
    STACKS,
    TIMES,
    free_port,
    has_module,
    make_material,
    versions,
)

APP = Path(__file__).resolve().with_name("_app_under_test.py")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--stacks", default=",".join(STACKS), help="comma list (default: all)")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma list (default {','.join(ROWS)})")
    p.add_argument("--n1", type=int, default=200, help="requests of the short run (200)")
    p.add_argument("--n2", type=int, default=1200, help="requests of the long run (1200)")
    p.add_argument("--connections", type=int, default=64, help="connections (default 64)")
    p.add_argument("--extras", type=Path, default=DEFAULT_EXTRAS, help="uvloop and httptools")
    args = p.parse_args(argv)
    args.stacks = [s for s in args.stacks.split(",") if s]
    args.rows = [r for r in args.rows.split(",") if r]
    if set(args.stacks) - set(STACKS) or set(args.rows) - set(ROWS):
        p.error(f"stacks from {list(STACKS)}, rows from {list(ROWS)}")
    if not 0 < args.n1 < args.n2:
        p.error("0 < --n1 < --n2")
    return args


async def drive(port: int, request: bytes, total: int, connections: int) -> list[int]:
    """Send ``total`` requests over ``connections`` keep-alive connections; the statuses."""
    statuses: list[int] = []
    left = total

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        end = time.monotonic() + 120
        while True:
            try:
                return await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.2)

    async def one_connection() -> None:
        nonlocal left
        reader, writer = await connect()
        try:
            while left > 0:
                left -= 1
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                statuses.append(int(head.split(b" ", 2)[1]))
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))
    return statuses


def count(
    stack: str, row: str, n: int, args: argparse.Namespace, env: dict[str, str], token: str
) -> int:
    http, loop = STACKS[stack]
    port = free_port()
    with tempfile.NamedTemporaryFile(prefix="cachegrind-", suffix=".log") as log:
        cmd = ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
        cmd += [f"--log-file={log.name}", sys.executable, str(APP), "--port", str(port)]
        cmd += ["--http", http, "--loop", loop] + (["--bare"] if row == "bare" else [])
        server = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            path = "/create" if row == "protected" else "/create-open"
            auth = (
                f"Authorization: Bearer {token}\r\n" if row in ("protected", "open+token") else ""
            )
            request = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n{auth}\r\n"
            ).encode()
            statuses = asyncio.run(drive(port, request, n, args.connections))
            if len(statuses) != n or set(statuses) != {200}:
                raise RuntimeError(f"{stack} {row}: statuses {sorted(set(statuses))}")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=120)
        text = Path(log.name).read_text()
    found = re.search(r"I\s+refs:\s+([\d,]+)", text)
    if found is None:
        raise RuntimeError(f"no instruction count from cachegrind: {text[-500:]}")
    return int(found.group(1).replace(",", ""))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    stacks = [
        s
        for s in args.stacks
        if all(has_module(m, args.extras) for m in STACKS[s] if m in ("httptools", "uvloop"))
    ]
    started = time.time()
    per_request: dict[tuple[str, str], float] = {}
    with tempfile.TemporaryDirectory(prefix="tokensmith-app-instr-") as tmp_name:
        m = make_material(Path(tmp_name))
        env = {k: v for k, v in os.environ.items() if not k.startswith("BENCH_")}
        env.update(
            BENCH_APP_JWKS=str(m.jwks_path), BENCH_APP_ISSUER=ISSUER, BENCH_APP_AUDIENCE=AUDIENCE
        )
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(args.extras), str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
        )
        for stack in stacks:
            for row in args.rows:
                low = count(stack, row, args.n1, args, env, m.token)
                high = count(stack, row, args.n2, args, env, m.token)
                per_request[stack, row] = (high - low) / (args.n2 - args.n1)
                print(
                    f"{stack} {row}: {per_request[stack, row] / 1000:.0f}k instructions/request",
                    file=sys.stderr,
                    flush=True,
                )
    cmd = " ".join(["bench/app_instructions.py", *(argv if argv is not None else sys.argv[1:])])
    lines = [
        "## Application server: instructions per request (cachegrind)",
        "",
        f"- command: `.venv/bin/python {cmd.strip()}`",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; "
        f"wall time {time.time() - started:.0f} s",
        versions(args.extras),
        f"- per (stack, row): the server under cachegrind, {args.n1} and then {args.n2} "
        f"requests over {args.connections} keep-alive connections, every answer 200; cell = "
        "(instructions at N2 - at N1) / (N2 - N1), in thousands",
        "",
        *[f"- **{row}**: {ROW_NOTES[row]}" for row in args.rows],
        "",
        "| stack | " + " | ".join(args.rows) + " | open / protected |",
        "|---|" + "---|" * (len(args.rows) + 1),
    ]
    for stack in stacks:
        cells = " | ".join(f"{per_request[stack, r] / 1000:.0f}k" for r in args.rows)
        ratio = ""
        if (stack, "open") in per_request and (stack, "protected") in per_request:
            ratio = f"{TIMES}{per_request[stack, 'open'] / per_request[stack, 'protected']:.3f}"
        lines.append(f"| {stack} | {cells} | {ratio} |")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
