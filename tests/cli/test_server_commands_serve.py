"""`tokensmith serve` as a real uvicorn process on 127.0.0.1: it answers, then stops on a signal."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import pytest

from tokensmith.cli.serve import issuer_port_warning

from ._server_cli import SCRIPT, clean_env

STARTED = "Application startup complete"


def free_port() -> int:
    # uvicorn cannot report a port it chose for --port 0, so take a free one from the
    # kernel and hand it over (a tiny race with other processes, acceptable in tests).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_answers_healthz_and_stops_cleanly_on_signal(
    tmp_path: Path, sig: signal.Signals
) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=clean_env(tmp_path / "var"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # A watchdog instead of a timed wait: a server that hangs is killed and the test fails.
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stderr is not None
        log: list[str] = []
        # uvicorn logs to stderr; reading it blocks until the app's lifespan finished
        # (migration, master key, first key) or the process died (EOF).
        for line in proc.stderr:
            log.append(line)
            if STARTED in line:
                break
        assert STARTED in "".join(log), "".join(log)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=10)
        assert ready.status_code == 200
        proc.send_signal(sig)
        _, rest = proc.communicate(timeout=15)
        log.append(rest)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(log)
    assert proc.returncode == 0, output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    # The default issuer names port 8000, not the port served: the operator is told.
    assert f"names port 8000, but serve listens on {port}" in output
    # The server created its state on the way up, as `init` would have.
    assert (tmp_path / "var" / "master.key").is_file()
    assert (tmp_path / "var" / "tokensmith.db").is_file()


@pytest.mark.parametrize(
    ("issuer", "port", "warned"),
    [
        ("http://127.0.0.1:8000", 8000, False),
        ("http://127.0.0.1:8000", 8010, True),
        ("http://localhost", 80, False),
        ("http://localhost", 8000, True),
        ("http://[::1]:8000", 8001, True),
        ("https://localhost", 8443, False),  # serve speaks no TLS: a proxy's port
        ("https://[::1]:8443", 443, False),
        ("https://auth.example.org", 8000, False),  # behind a proxy: its port, not ours
    ],
)
def test_a_local_issuer_naming_another_port_is_warned_of(
    issuer: str, port: int, warned: bool
) -> None:
    warning = issuer_port_warning(issuer, port)
    assert (warning is not None) == warned
    if warning is not None:
        assert "TOKENSMITH_ISSUER" in warning and str(port) in warning
