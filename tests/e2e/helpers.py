"""A real ``tokensmith serve`` process on 127.0.0.1, for the end-to-end tests."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cli._server_cli import SCRIPT, Cli

__all__ = ["STARTED", "free_port", "serve_process"]

STARTED = "Application startup complete"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_process(cli: Cli, port: int, *, watchdog_seconds: float = 120) -> Iterator[None]:
    """``tokensmith serve`` over ``cli``'s data directory, up until the block ends.

    Returns once uvicorn reports the lifespan complete; the server's log is drained in the
    background so it never blocks on a full pipe. A watchdog kills a server that hangs, so
    a hung server fails the tests instead of hanging them.
    """
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=cli.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(watchdog_seconds, proc.kill)
    watchdog.start()
    try:
        assert proc.stderr is not None
        log = []
        for line in proc.stderr:
            log.append(line)
            if STARTED in line:
                break
        assert STARTED in "".join(log), "".join(log)
        drain = threading.Thread(target=proc.stderr.read, daemon=True)
        drain.start()
        yield
        proc.terminate()
        drain.join(timeout=15)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
