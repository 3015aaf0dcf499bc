"""A client cannot make ``CoalescingHttpToolsProtocol`` hold a request's head or its
connection without limit (http_request_limits.py).

The limits are checked with raw sockets against a real uvicorn (with a short deadline)
and a real ``tokensmith serve`` (its memory while clients send endless heads).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tokensmith.server.http_protocol import CoalescingHttpToolsProtocol

from ._http_server import DEADLINE, RecordingTransport, app, base_url, run, running

__all__ = ["base_url"]  # the fixture, imported for pytest


# The limits: a request's head, the time a client takes to send a request, and the heads
# uvicorn and httptools let through.

LIMIT = CoalescingHttpToolsProtocol.max_head_bytes
KEEP_ALIVE = 1.0  # uvicorn's timeout_keep_alive on the quick server


class QuickProtocol(CoalescingHttpToolsProtocol):
    request_timeout = DEADLINE


@pytest.fixture(scope="module")
def quick_port() -> Iterator[int]:
    with running(QuickProtocol, timeout_keep_alive=KEEP_ALIVE) as port:
        yield port


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(":", 1)[1])


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while data := sock.recv(65536):
            received += data
    return received


def parse(data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The responses in ``data``: status, headers, body (each has a Content-Length)."""
    responses = []
    while data:
        head, sep, data = data.partition(b"\r\n\r\n")
        assert sep, head
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
        length = int(headers.get("content-length", "0"))
        responses.append((int(status_line.split()[1]), headers, data[:length]))
        data = data[length:]
    return responses


def refused(data: bytes, status: int, error: str) -> None:
    """``data`` is one refusal, in the app's JSON shape, closing the connection."""
    [(got, headers, body)] = parse(data)
    assert got == status, data
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == error


def test_the_limit_is_at_least_a_read_slice() -> None:
    with pytest.raises(ValueError, match="max_head_bytes"):
        type("Tiny", (CoalescingHttpToolsProtocol,), {"max_head_bytes": 1024})


def test_a_head_over_the_limit_in_one_read_gets_431(base_url: str) -> None:
    with connect(port_of(base_url)) as sock:
        # Never finished: the server must answer from the bytes alone.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * (LIMIT + 1024))
        refused(read_until_closed(sock), 431, "headers_too_large")


def test_a_head_over_the_limit_in_many_reads_gets_431_before_it_is_all_sent(
    base_url: str,
) -> None:
    with connect(port_of(base_url)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: ")
        sent = 0
        while sent < 2 * LIMIT and not select.select([sock], [], [], 0.002)[0]:
            sock.sendall(b"a" * 1024)
            sent += 1024
        refused(read_until_closed(sock), 431, "headers_too_large")
    assert LIMIT - 1024 < sent < LIMIT + 8 * 1024


def test_a_complete_head_over_the_limit_gets_431(base_url: str) -> None:
    with connect(port_of(base_url)) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * LIMIT + b"\r\n\r\n")
        refused(read_until_closed(sock), 431, "headers_too_large")


@pytest.mark.parametrize("piece", [None, 1000], ids=["one-read", "many-reads"])
def test_a_head_under_the_limit_is_served(base_url: str, piece: int | None) -> None:
    # Just under the limit, after pipelined requests in the same reads: the count of its
    # bytes must not take in theirs.
    first = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n" * 99
    head = b"GET /b HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * (LIMIT - 512) + b"\r\n\r\n"
    data = first + head + b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n"
    with connect(port_of(base_url)) as sock:
        step = piece or len(data)
        for start in range(0, len(data), step):
            sock.sendall(data[start : start + step])
            time.sleep(0.001 if piece else 0)
        responses = parse(read_until_closed(sock))
    assert [(status, body) for status, _, body in responses] == [
        *[(200, b"path=/a")] * 99,
        (200, b"path=/b"),
        (200, b"path=/close"),
    ]


def test_a_stalled_head_gets_408_at_the_deadline(quick_port: int) -> None:
    with connect(quick_port) as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: t\r\nX-A: a")
        start = time.monotonic()
        data = read_until_closed(sock)
        elapsed = time.monotonic() - start
    refused(data, 408, "request_timeout")
    assert DEADLINE * 0.9 < elapsed < DEADLINE + 2


def test_a_trickled_head_is_closed_at_the_deadline_from_its_first_byte(quick_port: int) -> None:
    with connect(quick_port) as sock:
        start = time.monotonic()
        for byte in b"GET /a HTTP/1.1\r\nHost: t\r\nX-A: " + b"a" * 100:
            if select.select([sock], [], [], DEADLINE / 5)[0]:
                break
            sock.sendall(bytes([byte]))  # each byte well within the deadline of the last
        elapsed = time.monotonic() - start
        data = read_until_closed(sock)
    refused(data, 408, "request_timeout")
    assert DEADLINE * 0.9 < elapsed < DEADLINE + 2


def test_a_stalled_body_gets_408_at_the_deadline(quick_port: int) -> None:
    with connect(quick_port) as sock:
        sock.sendall(b"POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        start = time.monotonic()
        data = read_until_closed(sock)
        elapsed = time.monotonic() - start
    refused(data, 408, "request_timeout")
    assert DEADLINE * 0.9 < elapsed < DEADLINE + 2


def test_a_slow_body_that_keeps_coming_is_read_whole(quick_port: int) -> None:
    # Five bytes, each within the deadline of the last, all of them well past it.
    with connect(quick_port) as sock:
        sock.sendall(b"POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
        for byte in b"abcde":
            time.sleep(DEADLINE / 2)
            sock.sendall(bytes([byte]))
        sock.sendall(b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n")
        responses = parse(read_until_closed(sock))
    assert [(status, body) for status, _, body in responses] == [
        (200, b"len=5"),
        (200, b"path=/close"),
    ]


def test_a_slow_app_is_not_the_clients_delay(quick_port: int) -> None:
    # The app takes longer than the deadline to answer; meanwhile the client has sent
    # part of its next head (pipelining) and waits for the answer before it goes on.
    with connect(quick_port) as sock:
        sock.sendall(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\nGET /close HTTP/1.1\r\n")
        received = b""
        while b"path=/sleep" not in received:
            data = sock.recv(65536)
            assert data, received
            received += data
        sock.sendall(b"Host: t\r\n\r\n")
        received += read_until_closed(sock)
    assert [(status, body) for status, _, body in parse(received)] == [
        (200, b"path=/sleep"),
        (200, b"path=/close"),
    ]


def test_a_client_waiting_for_100_continue_waits_for_the_app(quick_port: int) -> None:
    with connect(quick_port) as sock:
        sock.sendall(
            b"POST /sleep-then-read HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
            b"Connection: close\r\nContent-Length: 5\r\n\r\n"
        )
        interim = b"HTTP/1.1 100 Continue\r\n\r\n"
        received = b""
        while len(received) < len(interim):
            data = sock.recv(65536)
            assert data, received  # closed while the app had not asked for the body
            received += data
        assert received == interim
        sock.sendall(b"abcde")
        [(status, _, body)] = parse(read_until_closed(sock))
    assert (status, body) == (200, b"path=/sleep-then-read")


def test_idle_keep_alive_stays_uvicorns(quick_port: int) -> None:
    # Between requests the client owes nothing: the deadline does not apply, uvicorn's
    # keep-alive timeout does.
    with connect(quick_port) as sock:
        for path in (b"/a", b"/b"):
            sock.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n")
            data = sock.recv(65536)
            assert data.endswith(b"path=" + path), data
            time.sleep(2 * DEADLINE)
        start = time.monotonic()
        assert read_until_closed(sock) == b""
        elapsed = time.monotonic() - start
    assert KEEP_ALIVE - 2 * DEADLINE - 0.1 < elapsed < KEEP_ALIVE + 2


def test_heads_and_bodies_in_separate_reads_are_served(quick_port: int) -> None:
    with connect(quick_port) as sock:
        for n in range(20):
            body = b"x" * n
            sock.sendall(b"POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % n)
            time.sleep(0.005)
            sock.sendall(body)
            [(status, _, got)] = parse(sock.recv(65536))
            assert (status, got) == (200, b"len=%d" % n)


@pytest.mark.parametrize(
    ("head", "error"),
    [
        (b"GET /a HTTP/1.1\r\n\r\n", "invalid_request"),
        (b"GET /a HTTP/1.1\r\nX-A: 1\r\n\r\n", "invalid_request"),
        (b"GET /a HTTP/1.1\r\nHost: t\r\nHost: u\r\n\r\n", "invalid_request"),
    ],
    ids=["no-headers", "no-host", "two-hosts"],
)
def test_a_missing_or_repeated_host_gets_400(quick_port: int, head: bytes, error: str) -> None:
    with connect(quick_port) as sock:
        sock.sendall(head)
        refused(read_until_closed(sock), 400, error)


def test_an_http10_request_needs_no_host(quick_port: int) -> None:
    with connect(quick_port) as sock:
        sock.sendall(b"GET /a HTTP/1.0\r\n\r\n")
        [(status, _, body)] = parse(read_until_closed(sock))
    assert (status, body) == (200, b"path=/a")


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"identity", b"gzip"])
def test_a_transfer_encoding_other_than_chunked_gets_501(quick_port: int, coding: bytes) -> None:
    with connect(quick_port) as sock:
        sock.sendall(
            b"POST /len HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: " + coding + b"\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
        )
        refused(read_until_closed(sock), 501, "not_implemented")


@pytest.mark.parametrize("coding", [b"chunked", b"Chunked"])
def test_a_chunked_body_is_read(quick_port: int, coding: bytes) -> None:
    with connect(quick_port) as sock:
        sock.sendall(
            b"POST /len HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            b"Transfer-Encoding: " + coding + b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        [(status, _, body)] = parse(read_until_closed(sock))
    assert (status, body) == (200, b"len=5")


def test_a_refused_pipelined_request_closes_after_the_answers_owed(quick_port: int) -> None:
    # The refusal is not written into the answer being made: the connection closes after.
    with connect(quick_port) as sock:
        sock.sendall(b"GET /sleep HTTP/1.1\r\nHost: t\r\n\r\nGET /a HTTP/1.1\r\n\r\n")
        responses = parse(read_until_closed(sock))
    assert [(status, body) for status, _, body in responses] == [(200, b"path=/sleep")]


class ReadingTransport(RecordingTransport):
    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def test_a_request_read_whole_sets_no_timer() -> None:
    # The deadline costs nothing on the usual path: no timer for a request that arrives
    # in one read, with or without a body.
    async def steps() -> None:
        loop = asyncio.get_running_loop()
        config = uvicorn.Config(app, log_level="error")
        protocol = CoalescingHttpToolsProtocol(config, uvicorn.server.ServerState(), {}, loop)
        transport = ReadingTransport()
        protocol.connection_made(transport)
        timers: list[Any] = []
        real_call_at = loop.call_at

        def call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            if callback == protocol._check:
                timers.append(when)
            return real_call_at(when, callback, *args, **kwargs)

        loop.call_at = call_at  # type: ignore[method-assign]
        try:
            for n in range(3):
                protocol.data_received(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
                protocol.data_received(
                    b"POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n%d" % n
                )
                await asyncio.sleep(0.01)  # the app answers both
            assert timers == []
            answers = [data for call, data in transport.calls if call == "write"]
            assert len(answers) == 6 and all(b" 200 OK" in a for a in answers), answers
            # Incomplete requests: one timer for the connection, not one per request.
            for n in range(3):
                protocol.data_received(b"POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n")
                protocol.data_received(b"\r\n")
                protocol.data_received(b"%d" % n)
                await asyncio.sleep(0.01)
            assert len(timers) == 1
        finally:
            loop.call_at = real_call_at  # type: ignore[method-assign]
            protocol.connection_lost(None)

    run(steps)


# A real `tokensmith serve`: clients that send endless heads do not grow its memory.

SCRIPT = Path(sys.executable).with_name("tokensmith")


def resident_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_serve_does_not_hold_endless_heads(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TOKENSMITH_")}
    env["TOKENSMITH_DATA"] = str(tmp_path / "var")
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(90, proc.kill)
    watchdog.start()
    log: list[str] = []
    reader: threading.Thread | None = None
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if "Application startup complete" in line:
                break
        assert "Application startup complete" in "".join(log), "".join(log)
        # The rest of the log is read meanwhile, so that the server never blocks on it.
        stderr = proc.stderr
        reader = threading.Thread(target=lambda: log.extend(stderr))
        reader.start()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
        before = resident_bytes(proc.pid)
        planned = 48 * 1024 * 1024
        piece = b"a" * (256 * 1024)
        socks = [connect(port) for _ in range(4)]
        sent = []
        try:
            for sock in socks:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ")
                total = 0
                with contextlib.suppress(OSError):  # the server closed the connection
                    while total < planned:
                        sock.sendall(piece)
                        total += len(piece)
                sent.append(total)
            time.sleep(0.2)
            grown = resident_bytes(proc.pid) - before  # with the clients still connected
        finally:
            for sock in socks:
                sock.close()
        assert all(total < planned // 2 for total in sent), sent
        assert grown < 16 * 1024 * 1024, grown
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200
    finally:
        watchdog.cancel()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if reader is not None:
            reader.join(15)
        if proc.stderr is not None:
            proc.stderr.close()
    assert "Request refused (431)" in "".join(log)


def test_a_head_deadline_does_not_outlive_a_websocket_upgrade() -> None:
    # An upgrade head that came in two reads armed the deadline watch; the connection is
    # the WebSocket's once upgraded, and a timer firing into it would write a 408 there.
    with running(QuickProtocol) as port, connect(port) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n")
        time.sleep(0.05)
        sock.sendall(
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert sock.recv(65536) == b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
        time.sleep(DEADLINE * 1.5)  # the client owes nothing: the WebSocket is live
        sock.settimeout(1)
        sock.sendall(b"hello")
        assert sock.recv(65536) == b"echo:hello"
