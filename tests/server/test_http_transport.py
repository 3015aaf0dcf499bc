"""``CoalescingTransport``: a response's writes reach the socket as one.

Its rules are checked on a recording transport under a real event loop.
"""

from __future__ import annotations

import asyncio

import pytest

from tokensmith.server.http_transport import CoalescingTransport

from ._http_server import RecordingTransport, run


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
