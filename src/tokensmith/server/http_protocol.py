"""uvicorn's httptools protocol, with a response's writes sent to the socket as one.

uvicorn writes a response's head when the app sends ``http.response.start`` and its body
when the app sends ``http.response.body``: two ``send`` calls per response. On a TCP
connection each costs far more than the bytes it carries (the kernel's transmit path, and
on loopback the receiver's too): on a serving token server the socket writes were over a
quarter of the CPU per token request (BENCHMARKS.md). ``CoalescingHttpToolsProtocol``
hands uvicorn a transport that gathers writes and sends them together when the response
is complete, so a head and a body go out in one ``send``.

When the gathered bytes are sent: as soon as the response is complete (never later, so
a response does not wait for other requests' work in the same loop step); at the end
of the loop step for a response still being streamed; at once past 64 KiB; before the
transport is closed, half-closed or handed to another protocol; and before the client's
end-of-stream closes it (a client that half-closes after its request still gets its
answer). A WebSocket upgrade hands the WebSocket protocol the real transport. Flow
control stays the real transport's: it still pauses and resumes the protocol.

It also bounds what a client can make the server hold (httptools buffers a header line
however long, and uvicorn has no timeout for a request in progress):

- A request's head (request line and headers) over ``max_head_bytes`` (32 KiB, nginx's
  4 x 8 KiB; a token request's is under 1 KiB, a large JWT in a header a few) gets 431
  and the connection is closed: its bytes are counted as they arrive, so no more than
  the limit and one 8 KiB slice of a read is ever held for it.
- A head not complete ``request_timeout`` (10 s) after its first byte, or a body with
  no byte for as long, gets 408 (if nothing was answered yet) and the connection is
  closed. The clock stops while the client waits for the server: an earlier pipelined
  answer, the app's request for the body (100 Continue), or reading paused by flow
  control. Idle keep-alive connections stay uvicorn's (``timeout_keep_alive``).
- An HTTP/1.1 request without Host, or with two, gets 400; a Transfer-Encoding other
  than ``chunked`` gets 501 (llhttp would read ``gzip, chunked`` as plain chunked).

A refusal is answered in the app's JSON error shape and closes the connection. When
requests were pipelined and answers are still owed, the refused request gets none: the
connection closes after those answers (writing between them would corrupt one).

The usual request, whole in one read, sets no timer and costs about 0.2-0.3 us more
(measured in-process, feeding whole requests to data_received); only a read that
leaves a request incomplete does more.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

__all__ = ["CoalescingHttpToolsProtocol", "CoalescingTransport"]

# Past this many gathered bytes the writes go out at once: gathering exists for small
# heads and bodies, not to hold a large streamed body in memory.
_MAX_GATHERED = 64 * 1024
# Reads larger than this are parsed in slices of it (_feed_slices); nginx reads a head in
# 8 KiB buffers too.
_SLICE = 8 * 1024
# A timer may run a little before its time (asyncio's clock resolution).
_TIMER_SLACK = 0.001


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


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that will not be served (the
    answer is in ``_refusal``)."""


# What a connection's deadline watch is watching (``_phase``).
_NOTHING, _HEAD, _BODY, _GAP = 0, 1, 2, 3
# Header names ``on_header`` looks at: one set lookup per header, in place of uvicorn's
# comparison with b"expect".
_NOTED = frozenset((b"host", b"expect", b"transfer-encoding"))
# uvicorn's, called without super(): this runs once per request.
_on_headers_complete = HttpToolsProtocol.on_headers_complete


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` writing through a ``CoalescingTransport``, with limits on what
    a client may make it hold: a request's head (``max_head_bytes``) and the time a client
    takes to send a request (``request_timeout``)."""

    #: Past this many bytes of request line and headers: 431 and the connection closed.
    max_head_bytes: ClassVar[int] = 32 * 1024
    #: Seconds a request's head may take from its first byte, and a request's body may go
    #: without a byte arriving: then 408 and the connection closed.
    request_timeout: ClassVar[float] = 10.0

    # Per-connection state, with class-level defaults: an instance gets an attribute only
    # when it is first set, and most never set most of these. (Past 30 attributes an
    # instance's dict stops sharing its keys with the others', and every attribute of the
    # protocol, uvicorn's too, gets slower to read: uvicorn's take 28.)

    # What the deadline watch follows: a phase and the object that identifies its request
    # (the scope of a head, the cycle of a body), so that nothing is reset per request.
    _phase: int = _NOTHING
    _key: object = None
    _since: float = 0.0  # a head's first byte, or a body's latest
    _head_bytes: int = 0  # of the watched head, counted as it arrives
    _watch: asyncio.TimerHandle | None = None
    # The headers list of the last request that sent a Host header, and of the last one
    # whose head needs a closer look (_vet_head): identities again.
    _host_of: list[tuple[bytes, bytes]] | None = None
    _vet_of: list[tuple[bytes, bytes]] | None = None
    _refusal: tuple[int, str, str] | None = None  # for _invalid, from _vet_head
    _refused: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A head that starts and ends within one read's slice is never measured.
        if cls.max_head_bytes < _SLICE:
            raise ValueError(f"max_head_bytes must be at least {_SLICE}")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(CoalescingTransport(transport, self.loop))

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    def _flush(self) -> None:
        if isinstance(self.transport, CoalescingTransport):
            self.transport.flush()

    def on_response_complete(self) -> None:
        # uvicorn calls this right after the last body write: the head and the body are
        # both gathered, and nothing is gained by waiting for the end of the loop step.
        self._flush()
        super().on_response_complete()

    def eof_received(self) -> None:
        # asyncio closes the real transport itself after this returns (a falsy value):
        # what is gathered must be written first.
        self._flush()
        super().eof_received()

    def handle_websocket_upgrade(self) -> None:
        # The WebSocket protocol gets the real transport: its end-of-stream and its
        # closing are then asyncio's own, with nothing gathered in between.
        if isinstance(self.transport, CoalescingTransport):
            self.transport.flush()
            self.transport = self.transport.real
        # The connection is the WebSocket protocol's now: the head's deadline must not
        # fire into it (its connection_lost is never called on this protocol).
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._phase = _NOTHING
        super().handle_websocket_upgrade()

    # Reading requests: uvicorn's data_received, plus the limits. A whole request in one
    # read (the usual case) costs a few attribute reads more than uvicorn's: only a read
    # that leaves something incomplete goes on to _incomplete.

    def data_received(self, data: bytes) -> None:
        # uvicorn's _unset_keepalive_if_required, inline: a call fewer per request.
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        if len(data) > _SLICE:
            self._feed_slices(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._invalid()
            return
        except httptools.HttpParserUpgrade:
            self._upgrade()
            return
        cycle = self.cycle
        if (
            cycle is None
            or cycle.scope is not self.scope  # a head is incomplete
            or cycle.more_body  # a body is
            or cycle.response_complete  # bytes between requests
        ):
            self._incomplete(data)

    def _feed_slices(self, data: bytes) -> None:
        # A large read is parsed in slices, each followed by the check of what is left
        # incomplete: a head that starts in a slice is then known to have at most that
        # slice's bytes in it (and one that ends in it to be under the limit).
        for start in range(0, len(data), _SLICE):
            piece = data[start : start + _SLICE]
            try:
                self.parser.feed_data(piece)
            except httptools.HttpParserError:
                self._invalid()
                return
            except httptools.HttpParserUpgrade:
                self._upgrade()  # what follows the upgrade is dropped, as by uvicorn
                return
            cycle = self.cycle
            if (
                cycle is None
                or cycle.scope is not self.scope
                or cycle.more_body
                or cycle.response_complete
            ):
                self._incomplete(piece)
                if self._refused or self.transport.is_closing():
                    return

    def _upgrade(self) -> None:
        if self._should_upgrade():
            self.handle_websocket_upgrade()
        else:
            self._unsupported_upgrade_warning()

    def _invalid(self) -> None:
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            self._refuse(*refusal)
        else:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's on_header (lower-cased names, Expect: 100-continue noted), plus what
        # on_headers_complete needs: one set lookup per header in place of uvicorn's
        # comparison, and on the usual head (one Host, no Transfer-Encoding) one store.
        name = name.lower()
        if name in _NOTED:
            headers = self.headers
            if name == b"host":
                if self._host_of is headers:
                    self._vet_of = headers  # a second Host
                self._host_of = headers
            elif name == b"expect":
                if value.lower() == b"100-continue":
                    self.expect_100_continue = True
            else:
                self._vet_of = headers  # Transfer-Encoding
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        headers = self.headers
        if self._host_of is not headers or self._vet_of is headers:
            self._vet_head()
        _on_headers_complete(self)

    def _vet_head(self) -> None:
        """Raise ``_Refused`` for a head that is too large (one that started in an earlier
        read), has more than one Host, none on HTTP/1.1 (RFC 9112 section 3.2), or a
        Transfer-Encoding other than chunked."""
        hosts = 0
        codings: bytes | None = None
        for name, value in self.headers:
            if name == b"host":
                hosts += 1
            elif name == b"transfer-encoding":
                codings = value
        if self._key is self.scope and self._head_size() > self.max_head_bytes:
            self._refusal = self._too_large()
        elif hosts > 1:
            self._refusal = (400, "invalid_request", "More than one Host header.")
        elif hosts == 0 and self.parser.get_http_version() == "1.1":
            self._refusal = (400, "invalid_request", "HTTP/1.1 request without a Host header.")
        elif codings is not None and codings.strip(b" \t").lower() != b"chunked":
            # llhttp parses a body whose last coding is chunked and ignores the others:
            # the app would get a body it cannot read (RFC 9112 section 6.1). llhttp
            # itself refuses several Transfer-Encoding lines.
            self._refusal = (501, "not_implemented", "Transfer-Encoding other than chunked.")
        else:
            return
        raise _Refused

    def _head_size(self) -> int:
        # As written with "name: value" lines: the whitespace llhttp strips is not
        # counted, which errs towards letting a head through; what a client can add that
        # way is bounded by the read granularity (_SLICE).
        size = len(self.parser.get_method()) + len(self.url) + len(b"  HTTP/1.1\r\n\r\n")
        for name, value in self.headers:
            size += len(name) + len(value) + 4
        return size

    def _too_large(self) -> tuple[int, str, str]:
        return (431, "headers_too_large", f"The request head is over {self.max_head_bytes} bytes.")

    # What is incomplete at the end of a read, and the deadline watch.

    def _pending(self) -> tuple[int, object]:
        """The phase a request on this connection is in that waits for the client, and the
        object identifying that request."""
        cycle, scope = self.cycle, self.scope
        if cycle is None or cycle.scope is not scope:
            return _HEAD, scope
        if cycle.more_body:
            return _BODY, cycle
        if cycle.response_complete:
            return _GAP, cycle
        return _NOTHING, None

    def _incomplete(self, data: bytes) -> None:
        """Count a head's bytes, note a body's progress, and watch the deadline."""
        if self.transport.is_closing():
            return
        phase, key = self._pending()
        if phase == _NOTHING:
            return
        now = self.loop.time()
        if phase != self._phase or key is not self._key:
            self._phase, self._key, self._since = phase, key, now
            if phase == _HEAD:
                # The head started in this read (at most _SLICE bytes), after whatever
                # ended in it: what follows the read's last blank line is at most this
                # head's, for a head that were complete would contain one.
                end = data.rfind(b"\r\n\r\n")
                self._head_bytes = len(data) - (end + 4 if end >= 0 else 0)
                self._vet_of = self.headers  # measured again when complete (_vet_head)
        elif phase == _HEAD:
            self._head_bytes += len(data)  # all of a read that leaves it incomplete
        if phase == _BODY:
            self._since = now
        elif phase == _HEAD and self._head_bytes > self.max_head_bytes:
            self._refuse(*self._too_large())
            return
        if self._watch is None:
            self._watch = self.loop.call_at(self._since + self.request_timeout, self._check)

    def _check(self) -> None:
        """The deadline watch: one timer per connection, and only while something is
        incomplete (a client's partial request, not the app's work)."""
        self._watch = None
        if self.transport.is_closing() or self._refused:
            return
        if self.transport.get_protocol() is not self:
            return  # handed over (a WebSocket upgrade): not this protocol's to close
        phase, key = self._pending()
        if phase != self._phase or key is not self._key:
            return  # what was watched is over; the read that left more pending watches it
        cycle = self.cycle
        now = self.loop.time()
        if self.flow.read_paused or (
            # The client waits for the server: an earlier response still being made, or
            # the 100 Continue the app has not asked for yet. Its clock restarts.
            (phase == _HEAD and cycle is not None and not cycle.response_complete)
            or (phase == _BODY and cycle.waiting_for_100_continue)
        ):
            self._since = now
        elif now >= self._since + self.request_timeout - _TIMER_SLACK:
            self._expire(phase)
            return
        self._watch = self.loop.call_at(self._since + self.request_timeout, self._check)

    def _expire(self, phase: int) -> None:
        cycle = self.cycle
        self.logger.info("%sRequest not received in time: connection closed.", self._who())
        if phase == _BODY:
            if not cycle.response_started:
                self.transport.write(self._answer(408, "request_timeout", "Body not received."))
            # What connection_lost would do, at once: the app's receive() gets a
            # disconnect and its writes are dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        elif phase == _HEAD and self.scope is not None:
            self.transport.write(self._answer(408, "request_timeout", "Head not received."))
        self.transport.close()

    # Refusing a request.

    def _refuse(self, status: int, error: str, description: str) -> None:
        """Answer ``status`` to the request being read and close the connection. With
        answers still owed on it (pipelining), close after them instead, the refused
        request unanswered: never a write in the middle of another answer."""
        self._refused = True
        self.logger.warning("%sRequest refused (%d): %s", self._who(), status, description)
        previous = self.cycle  # the last request whose head was accepted
        if previous is None or previous.response_complete:
            self.transport.write(self._answer(status, error, description))
            self.transport.close()
            return
        # Close after the answers owed; nothing more is parsed meanwhile (asyncio calls the
        # protocol's data_received attribute, so this costs the other reads nothing).
        previous.keep_alive = False
        self.data_received = self._discard  # type: ignore[method-assign]

    def _discard(self, data: bytes) -> None:
        pass

    def _who(self) -> str:
        return f"{self.client[0]}:{self.client[1]} - " if self.client else ""

    def _answer(self, status: int, error: str, description: str) -> bytes:
        """An error answer in the app's JSON shape, then the connection closes (the shape
        of uvicorn's own send_400_response)."""
        body = json.dumps(
            {"error": error, "error_description": description}, separators=(",", ":")
        ).encode()
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: application/json\r\n",
                b"cache-control: no-store\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        return b"".join(content)
