"""A transport that sends a response's writes to the socket as one.

uvicorn writes a response's head when the app sends ``http.response.start`` and its body
when the app sends ``http.response.body``: two ``send`` calls per response. On a TCP
connection each costs far more than the bytes it carries (the kernel's transmit path, and
on loopback the receiver's too): on a serving token server the socket writes were over a
quarter of the CPU per token request (BENCHMARKS.md). ``CoalescingHttpToolsProtocol``
(http_protocol.py) hands uvicorn a ``CoalescingTransport``, which gathers writes and
sends them together when the response is complete, so a head and a body go out in one
``send``.

When the gathered bytes are sent: as soon as the response is complete (never later, so
a response does not wait for other requests' work in the same loop step); at the end
of the loop step for a response still being streamed; at once past 64 KiB; before the
transport is closed, half-closed or handed to another protocol; and before the client's
end-of-stream closes it (a client that half-closes after its request still gets its
answer). A WebSocket upgrade hands the WebSocket protocol the real transport. Flow
control stays the real transport's: it still pauses and resumes the protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["CoalescingTransport"]

# Past this many gathered bytes the writes go out at once: gathering exists for small
# heads and bodies, not to hold a large streamed body in memory.
_MAX_GATHERED = 64 * 1024


class CoalescingTransport(asyncio.Transport):
    """A transport that gathers writes until ``flush()``, and flushes what is left at the
    end of the loop step that wrote it."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.real = transport  # the socket transport (a WebSocket upgrade takes it over)
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
        if self.real.is_closing():
            return  # the peer went away (our own close() flushes before closing)
        data = gathered[0] if len(gathered) == 1 else b"".join(gathered)
        self.real.write(data)

    def close(self) -> None:
        self.flush()
        self.real.close()

    def write_eof(self) -> None:
        self.flush()
        self.real.write_eof()

    def abort(self) -> None:
        self._gathered, self._size = [], 0
        self.real.abort()

    def can_write_eof(self) -> bool:
        return self.real.can_write_eof()

    def is_closing(self) -> bool:
        return self.real.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.real.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self.real.get_write_buffer_size() + self._size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.real.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.real.set_write_buffer_limits(high, low)

    def is_reading(self) -> bool:
        return self.real.is_reading()

    def pause_reading(self) -> None:
        self.real.pause_reading()

    def resume_reading(self) -> None:
        self.real.resume_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        # An upgrade (WebSocket) hands the connection to another protocol: what this one
        # wrote goes first.
        self.flush()
        self.real.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.real.get_protocol()
