"""Malformed requests to the example application servers, over a real socket.

``test_app_server_process`` checks that a token in the query string of a well-formed
request never reaches a log. Here the request line itself is broken, which sends it down
the servers' error paths (for Flask, the standard library's ``send_error``, whose
message quotes the raw request line): each request still gets an answer, and the log
holds no token, no query string and no traceback. No token server is needed: a server
that cannot fetch its keys still answers, and these requests never reach a verifier.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.system import Demo, start_app_server  # noqa: E402

#: Shaped like a token; its signature is what must never be logged.
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJqb2huIn0.c2lnbmF0dXJlLW5ldmVyLWxvZ2dlZA"
QUERY = f"access_token={TOKEN}"
CLOSE = "Host: a\r\nConnection: close\r\n\r\n"

#: Complete requests with a broken request line (or target): every server must answer them.
MALFORMED = {
    "four words": f"GET /me?{QUERY} x HTTP/1.1\r\nHost: a\r\n\r\n",
    "bad version": f"GET /me?{QUERY} junk\r\n\r\n",
    "HTTP/9.9": f"GET /me?{QUERY} HTTP/9.9\r\n\r\n",
    "HTTP/0.9 POST": f"POST /me?{QUERY}\r\n\r\n",
    "bad authority": f"GET http://[::1/me?{QUERY} HTTP/1.1\r\n{CLOSE}",
    "control characters": f"GET /me\x1b[2J?{QUERY} HTTP/1.1\r\n{CLOSE}",
}
LOG = {"fastapi": "app-server.log", "flask": "flask-app.log"}


class AppServer:
    def __init__(self, flavour: str, port: int, log: Path) -> None:
        self.flavour, self.port, self.log = flavour, port, log

    def send(self, data: bytes) -> bytes:
        """The server's whole answer to ``data``, read until it closes the connection."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def log_text(self) -> str:
        time.sleep(0.3)  # the server writes its line after the answer
        return self.log.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serving(flavour: str, data_dir: Path) -> Iterator[AppServer]:
    port = free_port()
    # Port 1 on loopback: nothing answers, so the key set is simply unavailable.
    demo = Demo(str(data_dir), "http://127.0.0.1:1", f"http://127.0.0.1:{port}", *[""] * 6)
    with start_app_server(demo, port, flavour=flavour):
        yield AppServer(flavour, port, data_dir / LOG[flavour])


@pytest.fixture(scope="module", params=list(LOG))
def app_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AppServer]:
    with serving(request.param, tmp_path_factory.mktemp(f"request-log-{request.param}")) as app:
        yield app


@pytest.fixture(scope="module")
def flask_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    # uvicorn logs "Invalid HTTP request received." for any of these, and waits for the
    # rest of an overlong line: the Flask server's own log lines are checked on their own.
    with serving("flask", tmp_path_factory.mktemp("request-log-flask-lines")) as app:
        yield app


def assert_clean(text: str) -> None:
    assert TOKEN not in text and TOKEN.rsplit(".", 1)[1] not in text
    assert "access_token" not in text
    assert "Traceback" not in text and "Exception occurred" not in text
    assert "\x1b[2J" not in text  # a control sequence from the client reaches no terminal


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_request_is_answered_and_its_line_never_logged(
    app_server: AppServer, name: str
) -> None:
    answer = app_server.send(MALFORMED[name].encode("latin-1"))
    # Werkzeug answers an HTTP/0.9-looking request with a bare body, no status line.
    assert answer, f"no answer to {name}"
    assert_clean(app_server.log_text())


def test_flask_logs_the_status_of_each_malformed_request(flask_server: AppServer) -> None:
    before = flask_server.log_text()
    answer = flask_server.send(MALFORMED["four words"].encode())
    assert answer.startswith(b"HTTP/1.1 400 ")
    added = flask_server.log_text()[len(before) :]
    assert '"(unparsed request line)" 400 -' in added
    assert "code 400, message Bad Request" in added
    assert_clean(added)
    answer = flask_server.send(MALFORMED["bad authority"].encode())
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert '"GET - HTTP/1.1" 400 -' in flask_server.log_text()


def test_flask_overlong_request_line_and_header_line(flask_server: AppServer) -> None:
    # Exactly what the server reads of an overlong line (65537 bytes) and no more, so
    # it closes with nothing unread and the answer is not lost to a reset.
    line = (f"GET /me?{QUERY}&pad=".encode() + b"a" * 65537)[:65537]
    assert flask_server.send(line).startswith(b"HTTP/1.1 414 ")
    header = (b"X-Pad: " + b"a" * 65537)[:65537]
    request = f"GET /me?{QUERY} HTTP/1.1\r\n".encode() + header
    assert flask_server.send(request).startswith(b"HTTP/1.1 431 ")
    text = flask_server.log_text()
    assert '"(unparsed request line)" 414 -' in text
    assert '"GET /me HTTP/1.1" 431 -' in text
    assert_clean(text)
