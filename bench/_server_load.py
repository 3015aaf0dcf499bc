"""Load generation with wrk (one thread, keep-alive connections), and the in-process floors.

``run_wrk`` drives one scenario against a running ``BenchServer`` for a bounded time and
returns wrk's counts and latency percentiles, the server's CPU time over the run and wrk's
own. ``Floors`` times the raw ``cryptography`` RS256/ES256 signatures and argon2-cffi's
verify with the server's default parameters, in this (the bench's) process.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import argon2
import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from _server_proc import SCOPE, BenchServer
from tokensmith.server.services.passwords import DEFAULT_PARAMETERS

LUA = Path(__file__).with_name("server_bench.lua")
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Scenario:
    name: str
    server: str  # the alg of the server it runs against
    kind: str  # healthz, jwks, jwks_304, client_credentials, refresh, password
    connections: int
    note: str


def request_spec(server: BenchServer, kind: str, etag: str) -> tuple[str, str, str, list[str]]:
    """(method, path, body, header lines) of one scenario's request."""
    auth = [f"Authorization: {server.basic_auth}", f"Content-Type: {FORM}"]
    if kind == "healthz":
        return "GET", "/healthz", "", []
    if kind == "jwks":
        return "GET", "/.well-known/jwks.json", "", []
    if kind == "jwks_304":
        return "GET", "/.well-known/jwks.json", "", [f"If-None-Match: {etag}"]
    if kind == "client_credentials":
        return "POST", "/oauth/token", f"grant_type=client_credentials&scope={SCOPE}", auth
    if kind == "refresh":
        return "POST", "/oauth/token", "grant_type=refresh_token&refresh_token=", auth
    if kind == "password":
        body = httpx.QueryParams(
            {"grant_type": "password", "username": "bench-user", "password": server.password}
        )
        return "POST", "/oauth/token", str(body), auth
    raise ValueError(kind)


def _private_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: `make bench-server` installs it (apt-get)")
    return found


def run_wrk(
    server: BenchServer, sc: Scenario, duration: int, tmp: Path, etag: str, http: httpx.Client
) -> dict[str, float]:
    """One bounded wrk run; wrk's summary plus server and wrk CPU seconds."""
    method, path, body, headers = request_spec(server, sc.kind, etag)
    conf, tokens = tmp / "wrk.conf", tmp / "wrk.tokens"
    _private_file(conf, "\n".join([method, path, body, *headers]) + "\n")
    env = {**os.environ, "BENCH_CONF": str(conf), "BENCH_TOKENS": ""}
    if sc.kind == "refresh":
        # One chain per connection, each started by a fresh login (argon2: ~0.15 s each).
        chains = [server.login(http) for _ in range(sc.connections)]
        _private_file(tokens, "\n".join(chains) + "\n")
        env["BENCH_TOKENS"] = str(tokens)
    cmd = [wrk_path(), "-t1", f"-c{sc.connections}", f"-d{duration}s", "--timeout", "30s"]
    cmd += ["-s", str(LUA), server.base + path]
    cpu0, kids0, t0 = server.cpu(), resource.getrusage(resource.RUSAGE_CHILDREN), time.time()
    try:
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=duration + 60, check=False
        )
    finally:
        conf.unlink(missing_ok=True)
        tokens.unlink(missing_ok=True)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = server.cpu() - cpu0
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
    if done.returncode != 0 or line is None:
        # wrk's output holds counts and latencies only: the request is in the 0600 file.
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    result: dict[str, float] = json.loads(line.removeprefix("BENCHJSON "))
    seconds = result["duration_us"] / 1e6
    result.update(
        started=t0,
        rps=result["requests"] / seconds,
        server_cpu_s=server_cpu,
        wrk_cpu_s=(kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime),
        errors=sum(result[k] for k in result if k.startswith("err_"))
        + result["bad"]
        + result["starved"],
    )
    return result


class Floors:
    """The raw primitives the targets compare against, timed in this process."""

    MESSAGE = b"e" * 420  # about an access token's signing input (header.payload)

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.argon2 = argon2.PasswordHasher.from_parameters(DEFAULT_PARAMETERS)
        self._password = os.urandom(18).hex()
        self._hash = self.argon2.hash(self._password)

    @staticmethod
    def _per_call(fn: object, seconds: float, at_least: int) -> float:
        """Median µs of individually timed calls over ``seconds`` (``at_least`` calls)."""
        assert callable(fn)
        times: list[float] = []
        end = time.perf_counter() + seconds
        while time.perf_counter() < end or len(times) < at_least:
            t = time.perf_counter_ns()
            fn()
            times.append((time.perf_counter_ns() - t) / 1000)
        return statistics.median(times)

    def rs256_sign_us(self, seconds: float = 0.4) -> float:
        key, msg, pad, sha = self.rsa, self.MESSAGE, padding.PKCS1v15(), hashes.SHA256()
        return self._per_call(lambda: key.sign(msg, pad, sha), seconds, 50)

    def es256_sign_us(self, seconds: float = 0.4) -> float:
        key, msg, alg = self.ec, self.MESSAGE, ec.ECDSA(hashes.SHA256())
        return self._per_call(lambda: key.sign(msg, alg), seconds, 200)

    def argon2_verify_us(self, calls: int = 5) -> float:
        hasher, stored, pw = self.argon2, self._hash, self._password
        return self._per_call(lambda: hasher.verify(stored, pw), 0.0, calls)
