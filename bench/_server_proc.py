"""A real ``tokensmith serve`` process for the server benchmark: set up, start, stop.

``BenchServer.start(alg, tmp)`` makes a data dir, runs ``tokensmith init``, ``users add``
and ``clients add`` (password on stdin, secret read from stdout and kept in memory), starts
``tokensmith serve --port P`` with one worker, waits for ``/readyz`` and returns. ``stop()``
sends SIGTERM and waits. Secrets and tokens are never printed; the server's log goes to a
file in the temp dir. ``FloorServer`` runs the calibration floor (``_token_floor.py``) the
same way.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SCRIPT = Path(sys.executable).with_name("tokensmith")
CLIENT_ID = "bench"
USERNAME = "bench-user"
AUDIENCE = "bench-api"
SCOPE = "api"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(
    data_dir: Path, issuer: str, alg: str, log_level: str | None, access_log: str | None = None
) -> dict[str, str]:
    """This process's environment without any TOKENSMITH_* setting, plus the server's."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TOKENSMITH_")}
    env.update(
        TOKENSMITH_DATA=str(data_dir),
        TOKENSMITH_ISSUER=issuer,
        TOKENSMITH_SIGNING_ALGORITHMS=alg,
        TOKENSMITH_WORKERS="1",
    )
    if log_level is not None:
        env["TOKENSMITH_LOG_LEVEL"] = log_level
    if access_log is not None:
        env["TOKENSMITH_ACCESS_LOG"] = access_log
    return env


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads (0.0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class BenchServer:
    alg: str
    root: Path
    port: int
    env: dict[str, str]
    password: str = field(repr=False)
    secret: str = field(default="", repr=False)
    proc: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def basic_auth(self) -> str:
        raw = f"{CLIENT_ID}:{self.secret}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @classmethod
    def start(
        cls, alg: str, tmp: Path, log_level: str | None, access_log: str | None = None
    ) -> BenchServer:
        root = tmp / alg.lower()
        root.mkdir(mode=0o700)
        port = free_port()
        env = server_env(root / "var", f"http://127.0.0.1:{port}", alg, log_level, access_log)
        server = cls(alg, root, port, env, password=secrets.token_urlsafe(18))
        server._setup()
        server._spawn()
        return server

    def _cli(self, *args: str, stdin: str = "") -> str:
        result = subprocess.run(
            [str(SCRIPT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            # stderr carries `error: CODE: message`, never a secret (see docs/cli.md).
            raise RuntimeError(f"tokensmith {args[0]} {args[1:2]} failed: {result.stderr.strip()}")
        return result.stdout

    def _setup(self) -> None:
        self._cli("init")
        self._cli("users", "add", USERNAME, "--role", "EDITOR", stdin=self.password + "\n")
        out = self._cli(
            "clients", "add", CLIENT_ID,
            "--grant", "client_credentials", "--grant", "password", "--grant", "refresh_token",
            "--scope", SCOPE, "--audience", AUDIENCE,
        ).strip()  # fmt: skip
        if out.startswith("{"):  # a JSON output, should `clients add` grow one
            parsed = json.loads(out)
            out = str(parsed.get("client_secret") or parsed.get("secret") or "")
        self.secret = out.splitlines()[-1].strip() if out else ""
        if not self.secret:
            raise RuntimeError("tokensmith clients add printed no secret")

    def _command(self) -> list[str]:
        return [str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(self.port)]

    def _spawn(self) -> None:
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                self._command(),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.alg} server exited at start:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.alg} server not ready after 90 s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid) if self.proc is not None else 0.0

    def stop(self) -> None:
        """SIGTERM, then wait (kill after 30 s); records the exit code."""
        proc = self.proc
        if proc is None or self.exit_code is not None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            self.exit_code = proc.wait()

    # -- requests made by the bench itself (gates, refresh chains) -----------------

    def login(self, client: httpx.Client) -> str:
        """A password-grant login; returns its refresh token (never printed)."""
        response = client.post(
            f"{self.base}/oauth/token",
            data={"grant_type": "password", "username": USERNAME, "password": self.password},
            headers={"Authorization": self.basic_auth},
            timeout=60,
        )
        if response.status_code != 200:
            raise RuntimeError(f"login refused: {response.status_code} {_error(response)}")
        return str(response.json()["refresh_token"])


class FloorServer(BenchServer):
    """``_token_floor.py`` (the least a token endpoint costs on this stack) in its own
    process, driven like a ``BenchServer`` for its client_credentials requests only."""

    @classmethod
    def start(
        cls, alg: str, tmp: Path, log_level: str | None = None, access_log: str | None = None
    ) -> BenchServer:
        root = tmp / f"floor-{alg.lower()}"
        root.mkdir(mode=0o700)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TOKENSMITH_")}
        server = cls(alg, root, port, env, password="")
        server.secret = secrets.token_urlsafe(32)
        server.env["BENCH_FLOOR_SECRET"] = server.secret
        server._spawn()
        return server

    def _command(self) -> list[str]:
        floor = Path(__file__).with_name("_token_floor.py")
        return [sys.executable, str(floor), "--port", str(self.port), "--alg", self.alg]

    def login(self, client: httpx.Client) -> str:
        raise RuntimeError("the floor has no password grant")


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code") or body.get("error") or "") if isinstance(body, dict) else ""
