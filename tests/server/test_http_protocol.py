"""``CoalescingHttpToolsProtocol``: a response's writes reach the socket as one.

The protocol is checked under a real uvicorn on 127.0.0.1, where every write it makes to
the socket's transport is recorded: one per small response, the bytes unchanged,
keep-alive, pipelining, streaming and closing as with uvicorn's own protocol.
"""

from __future__ import annotations

import select
import socket
import time

import httpx

from tokensmith.server.http_transport import CoalescingTransport

from ._http_server import BIG_CHUNK, HOLD, STARTED, RecordedProtocol, RecordedWebSocket, base_url

__all__ = ["base_url"]  # the fixture, imported for pytest


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
