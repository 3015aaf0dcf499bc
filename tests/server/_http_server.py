"""What the tests of the HTTP protocol and its transport share: a transport that records
what it is asked to do, and a real uvicorn on 127.0.0.1 running a small app with a
``CoalescingHttpToolsProtocol`` (sub)class. Modules import ``base_url`` from here as a
fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
import uvicorn

from tokensmith.server.http_protocol import CoalescingHttpToolsProtocol

BIG_CHUNK = 40 * 1024
STARTED: dict[str, float] = {}
HOLD = 0.2
DEADLINE = 0.3  # QuickProtocol's request_timeout
SLOW_APP = 2.5 * DEADLINE


class RecordingTransport(asyncio.Transport):
    """What a socket transport was asked to do, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", b""))
        self.closing = True

    def write_eof(self) -> None:
        self.calls.append(("write_eof", b""))

    def abort(self) -> None:
        self.calls.append(("abort", b""))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 7

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.calls.append(("set_protocol", b""))


def run(steps: Any) -> None:
    asyncio.run(steps())


# A real uvicorn with the protocol, recording what it writes to the socket's transport.


class RecordedProtocol(CoalescingHttpToolsProtocol):
    writes: ClassVar[list[bytes]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        real_write = transport.write

        def write(data: Any) -> None:
            RecordedProtocol.writes.append(bytes(data))
            real_write(data)

        transport.write = write  # type: ignore[method-assign]
        super().connection_made(transport)


class RecordedWebSocket(asyncio.Protocol):
    """Stands in for uvicorn's WebSocket protocol: notes the transport it was given and
    answers the handshake it is handed."""

    transports: ClassVar[list[asyncio.BaseTransport]] = []

    def __init__(self, **_: Any) -> None:
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        RecordedWebSocket.transports.append(transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if data.startswith(b"GET "):
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        else:
            self.transport.write(b"echo:" + data)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/sleep-then-read":
        await asyncio.sleep(SLOW_APP)  # the app, not the client, is slow to take the body
    received = bytearray()
    while True:
        message = await receive()
        received += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/sleep":
        await asyncio.sleep(SLOW_APP)  # the app is slow to answer a complete request
    if scope["path"] == "/len":
        body = f"len={len(received)}".encode()
        length = str(len(body)).encode()
        headers = [(b"content-length", length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["path"].startswith("/block/"):
        STARTED[scope["path"]] = time.monotonic()
        time.sleep(HOLD)  # work that holds the event loop, as a signature does
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(3):
            chunk = bytes([97 + i]) * BIG_CHUNK
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await asyncio.sleep(0.01)  # the app waits between chunks: each goes out
        await send({"type": "http.response.body", "body": b""})
        return
    body = f"path={scope['path']}".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    if scope["path"] == "/close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextlib.contextmanager
def running(protocol: type[CoalescingHttpToolsProtocol], **options: Any) -> Iterator[int]:
    """A uvicorn with ``protocol`` on 127.0.0.1 in a thread; its port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=protocol,
        ws=RecordedWebSocket,
        log_level="error",
        **options,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with running(RecordedProtocol) as port:
        yield f"http://127.0.0.1:{port}"
