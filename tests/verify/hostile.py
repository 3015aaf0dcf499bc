"""A real HTTP server on 127.0.0.1 whose answers a test writes byte by byte.

``httpx.MockTransport`` never exercises the socket, header decoding or timeouts;
the hostile-server tests need all three. Each route is a function given the
request handler; it may write anything to ``handler.wfile``.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Route = Callable[[http.server.BaseHTTPRequestHandler], None]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


class HostileServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        #: (path, request headers) of every request, in order.
        self.requests: list[tuple[str, dict[str, str]]] = []
        #: Set at teardown: dripping routes stop.
        self.closing = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                server.requests.append((path, dict(self.headers.items())))
                route = server.routes.get(path)
                if route is None:
                    send(self, 404)
                    return
                try:
                    route(self)
                except OSError:
                    pass  # the client hung up: what a dripping route expects

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    @contextmanager
    def running(self) -> Iterator[HostileServer]:
        self._thread.start()
        try:
            yield self
        finally:
            self.closing.set()
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)


def send(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes | dict[str, Any] = b"",
    headers: tuple[tuple[str, bytes], ...] = (),
) -> None:
    """A complete response; header values are raw bytes, so they may be anything."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    out = [f"HTTP/1.1 {status} X\r\n".encode(), f"Content-Length: {len(data)}\r\n".encode()]
    out += [name.encode() + b": " + value + b"\r\n" for name, value in headers]
    handler.wfile.write(b"".join(out) + b"\r\n" + data)
    handler.wfile.flush()
