"""The guide's architecture on one machine: the token server and an application server.

``prepare`` initialises a data directory once (keys, database, the demo users ``john``
(EDITOR) and ``admin`` (ADMIN) with generated passwords, the demo client, and the
application server's own client for the revocation feed) and keeps the generated
credentials in ``demo-credentials.json`` (mode 0600) in that directory, for the demo
only; all or nothing, so an interrupted first run leaves no half-made directory behind.
``running`` starts both servers as child processes and stops them on exit.
``make run`` and the end-to-end tests both use it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

__all__ = ["Demo", "prepare", "running", "start_app_server", "start_token_server"]

CREDENTIALS_FILE = "demo-credentials.json"
_BIN = Path(sys.executable).parent
_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Demo:
    """Where everything runs and the credentials ``prepare`` generated."""

    data_dir: str
    issuer: str
    app_url: str
    john_password: str
    admin_password: str
    client_id: str
    client_secret: str
    app_client_id: str
    app_client_secret: str


def token_server_env(demo: Demo) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENSMITH_", "APP_"))}
    env.update(TOKENSMITH_DATA=demo.data_dir, TOKENSMITH_ISSUER=demo.issuer)
    return env


def app_server_env(demo: Demo, port: int, poll_interval: float = 5.0) -> dict[str, str]:
    env = token_server_env(demo)
    env.update(
        APP_ISSUER=demo.issuer,
        APP_AUDIENCE=demo.app_url,
        APP_HOST="127.0.0.1",
        APP_PORT=str(port),
        APP_CLIENT_ID=demo.app_client_id,
        APP_CLIENT_SECRET=demo.app_client_secret,
        APP_REVOCATION_POLL=str(poll_interval),
    )
    return env


def _cli(demo_env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    argv = [str(_BIN / "tokensmith"), *args]
    with subprocess.Popen(
        argv,
        env=demo_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(stdin)
        except BaseException:
            # Interrupted (Ctrl-C): the command must be gone before prepare() removes
            # the directory it writes to (subprocess.run waits only 0.25 s for it).
            proc.kill()
            proc.wait()
            raise
    if proc.returncode != 0:
        raise RuntimeError(f"tokensmith {args[0]} failed: {stderr.strip()}")
    return stdout


def _client_secret(env: dict[str, str], client_id: str, *options: str) -> str:
    # `clients add` prints the secret alone on stdout (its messages go to stderr).
    return _cli(env, "clients", "add", client_id, *options).strip()


def prepare(data_dir: Path, issuer: str, app_url: str) -> Demo:
    """The demo's credentials, creating the data directory and its users the first time.

    The first time is all or nothing: everything is made in a temporary sibling of
    ``data_dir``, renamed into place once the credentials are written. Interrupted
    (Ctrl-C) or failed, it leaves ``data_dir`` as it was, so the next run starts over
    instead of finding keys and an admin whose password was never shown.
    """
    saved = data_dir / CREDENTIALS_FILE
    if saved.exists():
        demo = Demo(**json.loads(saved.read_text(encoding="utf-8")))
        if demo.issuer == issuer and demo.app_url == app_url:
            return demo
        raise SystemExit(f"{data_dir} was set up for {demo.issuer}; remove it to start over")
    if data_dir.exists() and any(data_dir.iterdir()):
        # Users and clients there were not made by the demo: adding john again would fail.
        raise SystemExit(
            f"{data_dir} holds a token server the demo did not set up; "
            "remove it or point TOKENSMITH_DATA elsewhere"
        )
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    # Same parent, so the final rename stays on one filesystem; mode 0700, as init's.
    staging = Path(tempfile.mkdtemp(dir=data_dir.parent, prefix=f".{data_dir.name}.setup-"))
    try:
        demo = _set_up(staging, data_dir, issuer, app_url)
        # An empty data_dir is replaced; a non-empty one (another run won) makes this fail.
        os.rename(staging, data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return demo


def _set_up(staging: Path, data_dir: Path, issuer: str, app_url: str) -> Demo:
    """Initialise ``staging`` for use as ``data_dir``; the credentials file comes last.

    Nothing in the directory records its own path (the servers find the database and
    the key file from ``TOKENSMITH_DATA``), so it may be renamed once ready.
    """
    john, admin = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
    env = token_server_env(Demo(str(staging), issuer, app_url, "", "", "", "", "", ""))
    _cli(env, "init", "--admin", "admin", stdin=admin + "\n")
    _cli(env, "users", "add", "john", "--role", "EDITOR", "--name", "John", stdin=john + "\n")
    grants = ("--grant", "password", "--grant", "refresh_token")
    secret = _client_secret(env, "demo", *grants, "--audience", app_url, "--scope", "api")
    # The application server's own identity, for the revocation feed only.
    feed_secret = _client_secret(env, "app-server", "--grant", "client_credentials")
    demo = Demo(
        str(data_dir), issuer, app_url, john, admin, "demo", secret, "app-server", feed_secret
    )
    fd = os.open(staging / CREDENTIALS_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(asdict(demo), out, indent=2)
    return demo


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextmanager
def _process(argv: list[str], env: dict[str, str], ready_url: str, log: Path) -> Iterator[None]:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    # A server that hangs on shutdown is killed rather than left behind.
    try:
        _wait_ready(ready_url, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_token_server(demo: Demo, port: int) -> ExitStack:
    """``tokensmith serve`` until the stack closes; its log is ``token-server.log``."""
    stack = ExitStack()
    argv = [str(_BIN / "tokensmith"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    log = Path(demo.data_dir) / "token-server.log"
    stack.enter_context(_process(argv, token_server_env(demo), f"{demo.issuer}/readyz", log))
    return stack


def start_app_server(
    demo: Demo, port: int, *, flavour: str = "fastapi", poll: float = 5.0
) -> ExitStack:
    """``flavour``: ``fastapi`` (examples/app_server) or ``flask`` (examples/flask_app);
    its log is ``app-server.log`` (``flask-app.log``) in the data directory."""
    module = {"fastapi": "examples.app_server", "flask": "examples.flask_app"}[flavour]
    argv = [sys.executable, "-m", module]
    env = app_server_env(demo, port, poll)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    stack = ExitStack()
    log = Path(demo.data_dir) / ("app-server.log" if flavour == "fastapi" else "flask-app.log")
    stack.enter_context(_process(argv, env, f"http://127.0.0.1:{port}/public", log))
    return stack


@contextmanager
def running(demo: Demo, token_port: int, app_port: int) -> Iterator[None]:
    with start_token_server(demo, token_port), start_app_server(demo, app_port):
        yield
