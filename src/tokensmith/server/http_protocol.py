"""uvicorn's httptools protocol, with a response's writes sent to the socket as one.

uvicorn writes a response's head when the app sends ``http.response.start`` and its body
when the app sends ``http.response.body``: two ``send`` calls per response. On a TCP
connection each costs far more than the bytes it carries (the kernel's transmit path, and
on loopback the receiver's too): on a serving token server the socket writes were over a
quarter of the CPU per token request (BENCHMARKS.md). ``CoalescingHttpToolsProtocol``
hands uvicorn a transport that gathers the writes of one event-loop step and sends them
together at the end of it, so a head and a body go out in one ``send``.

Nothing else changes: the order of the bytes, flow control (the real transport still
pauses and resumes the protocol), closing (what is gathered is written first, then the
close is passed on) and the socket's details are the real transport's.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol", "CoalescingTransport"]

# Past this many gathered bytes the writes go out at once: gathering exists for small
# heads and bodies, not to hold a large streamed body in memory.
_MAX_GATHERED = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A transport that writes what one loop step wrote in a single write, at its end."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._gathered: list[bytes] = []
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._gathered:
            self._loop.call_soon(self.flush)
        self._gathered.append(bytes(data))
        self._size += len(data)
        if self._size >= _MAX_GATHERED:
            self.flush()

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Write what is gathered (a scheduled flush after an early one finds nothing)."""
        if not self._gathered:
            return
        gathered = self._gathered
        self._gathered, self._size = [], 0
        if self._transport.is_closing():
            return  # the peer went away (our own close() flushes before closing)
        data = gathered[0] if len(gathered) == 1 else b"".join(gathered)
        self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._gathered, self._size = [], 0
        self._transport.abort()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        # An upgrade (WebSocket) hands the connection to another protocol: what this one
        # wrote goes first.
        self.flush()
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` writing through a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(CoalescingTransport(transport, self.loop))
