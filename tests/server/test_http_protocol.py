"""``CoalescingHttpToolsProtocol``: a response's writes reach the socket as one.

The transport's rules are checked on a recording transport under a real event loop; the
protocol is checked under a real uvicorn on 127.0.0.1, where every write it makes to the
socket's transport is recorded: one per small response, the bytes unchanged, keep-alive,
pipelining, streaming and closing as with uvicorn's own protocol.
"""

from __future__ import annotations

import asyncio
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn

from tokensmith.server.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport

BIG_CHUNK = 40 * 1024
STARTED: dict[str, float] = {}
HOLD = 0.2


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


def test_the_writes_of_one_step_go_out_as_one_at_its_end() -> None:
    async def steps() -> None:
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.write(b"")
        transport.write(memoryview(b"body"))
        assert real.calls == []
        assert transport.get_write_buffer_size() == 7 + len(b"HTTP/1.1 200 OK\r\n\r\nbody")
        await asyncio.sleep(0)
        assert real.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\nbody")]
        transport.writelines([b"a", b"b"])
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert real.calls[1:] == [("write", b"ab")]

    run(steps)


def test_a_large_write_goes_out_at_once() -> None:
    async def steps() -> None:
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"head")
        transport.write(b"x" * (64 * 1024))
        assert real.calls == [("write", b"head" + b"x" * (64 * 1024))]
        await asyncio.sleep(0)  # the flush scheduled by the first write finds nothing
        assert len(real.calls) == 1

    run(steps)


@pytest.mark.parametrize("last", ["close", "write_eof", "set_protocol"])
def test_what_is_gathered_is_written_before_the_transport_is_closed_or_handed_on(
    last: str,
) -> None:
    async def steps() -> None:
        real = RecordingTransport()
        transport = CoalescingTransport(real, asyncio.get_running_loop())
        transport.write(b"bye")
        if last == "set_protocol":
            transport.set_protocol(asyncio.Protocol())
        else:
            getattr(transport, last)()
        assert real.calls == [("write", b"bye"), (last, b"")]
        await asyncio.sleep(0)
        assert len(real.calls) == 2

    run(steps)


def test_abort_and_a_lost_connection_drop_what_is_gathered() -> None:
    async def steps() -> None:
        loop = asyncio.get_running_loop()
        real = RecordingTransport()
        transport = CoalescingTransport(real, loop)
        transport.write(b"never sent")
        transport.abort()
        await asyncio.sleep(0)
        assert real.calls == [("abort", b"")]

        lost = RecordingTransport()
        transport = CoalescingTransport(lost, loop)
        transport.write(b"to a peer that left")
        lost.closing = True  # what the socket transport says once the connection is lost
        await asyncio.sleep(0)
        assert lost.calls == []

    run(steps)


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
    while (await receive()).get("more_body"):
        pass
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


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=RecordedProtocol,
        ws=RecordedWebSocket,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


def settle() -> None:
    time.sleep(0.05)  # the server thread's flush runs at the end of its loop step


def test_a_small_response_is_one_write_and_keep_alive_works(base_url: str) -> None:
    RecordedProtocol.writes.clear()
    with httpx.Client(base_url=base_url) as client:
        for path in ("/a", "/b", "/c"):
            response = client.post(path, content=b"x=1")
            assert (response.status_code, response.text) == (200, f"path={path}")
    settle()
    assert len(RecordedProtocol.writes) == 3
    assert all(w.startswith(b"HTTP/1.1 200 OK\r\n") for w in RecordedProtocol.writes)
    assert RecordedProtocol.writes[0].endswith(b"\r\n\r\npath=/a")


def test_pipelined_requests_are_answered_in_order(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    request = "GET {} HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall("".join(request.format(p) for p in ("/1", "/2", "/3")).encode())
        received = b""
        while received.count(b"path=/") < 3:
            data = sock.recv(65536)
            assert data, received
            received += data
    assert [received.index(f"path=/{n}".encode()) for n in (1, 2, 3)] == sorted(
        received.index(f"path=/{n}".encode()) for n in (1, 2, 3)
    )


def test_a_streamed_body_arrives_whole_and_in_order(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        response = client.get("/stream")
    assert response.status_code == 200
    assert response.content == b"a" * BIG_CHUNK + b"b" * BIG_CHUNK + b"c" * BIG_CHUNK


def test_connection_close_is_sent_before_the_socket_closes(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n")
        received = b""
        while data := sock.recv(65536):  # ends when the server closes
            received += data
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(b"\r\n\r\npath=/close")


def test_a_client_that_half_closes_after_its_request_gets_the_answer(base_url: str) -> None:
    # asyncio closes the transport on the client's end-of-stream, in the loop step that
    # answered: the gathered answer must be written before that.
    port = int(base_url.rsplit(":", 1)[1])
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /half HTTP/1.1\r\nHost: t\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while data := sock.recv(65536):
                received += data
        assert received.endswith(b"\r\n\r\npath=/half"), received


def test_a_response_leaves_when_complete_not_after_the_other_requests_of_its_step(
    base_url: str,
) -> None:
    # The first request holds the loop, so the next four are read together and their
    # handlers run one after another in one loop step. Each answer must be on its way
    # before the next handler starts, not held until the last one is done.
    port = int(base_url.rsplit(":", 1)[1])
    STARTED.clear()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(5)]
    try:
        socks[0].sendall(b"GET /block/0 HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.03)  # the server is now inside the first handler
        for n, sock in enumerate(socks[1:], start=1):
            sock.sendall(f"GET /block/{n} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        arrived: dict[int, float] = {}
        waiting = dict(enumerate(socks))
        while waiting:
            readable, _, _ = select.select(list(waiting.values()), [], [], 10)
            assert readable, "no answer within 10 s"
            for sock in readable:
                n = next(k for k, v in waiting.items() if v is sock)
                arrived[n] = time.monotonic()
                del waiting[n]
    finally:
        for sock in socks:
            sock.close()
    assert len(STARTED) == 5
    # Request n's answer is out while handler n + 1 holds the loop (HOLD seconds), not
    # once the last handler of the step is done (HOLD later at the least).
    for n in range(1, 4):
        assert arrived[n] < STARTED[f"/block/{n + 1}"] + HOLD / 2, (arrived, STARTED)


def test_a_websocket_upgrade_hands_over_the_real_transport(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    RecordedWebSocket.transports.clear()
    handshake = (
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(handshake)
        assert sock.recv(65536) == b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
        sock.sendall(b"hello")
        assert sock.recv(65536) == b"echo:hello"
    [transport] = RecordedWebSocket.transports
    assert not isinstance(transport, CoalescingTransport)
