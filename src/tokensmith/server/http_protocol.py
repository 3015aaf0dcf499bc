"""uvicorn's httptools protocol, with a response's writes sent to the socket as one and
limits on what a client can make the server hold.

``CoalescingHttpToolsProtocol`` is the HTTP protocol ``tokensmith serve`` gives uvicorn.
It hands uvicorn a ``CoalescingTransport`` (http_transport.py: why, and when gathered
bytes are sent), which gathers writes and sends them together when the response is
complete, so a head and a body go out in one ``send``. It flushes that transport as
soon as a response is complete, before the client's end-of-stream closes the
connection, and before a WebSocket upgrade, which gets the real transport.

It also bounds what a client can make the server hold: a request's head (431), the time
a client takes to send a request (408), and heads httptools would let through (400,
501). http_request_limits.py says what the limits are, and its ``RequestLimitsProtocol``
(this class's base) holds their state and the code that enforces them past the usual
request; this module holds the reading path every request takes.

The usual request, whole in one read, sets no timer and costs about 0.2-0.3 us more
(measured in-process, feeding whole requests to data_received); only a read that
leaves a request incomplete does more.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tokensmith.server.http_request_limits import NOTHING, RequestLimitsProtocol
from tokensmith.server.http_transport import CoalescingTransport

__all__ = ["CoalescingHttpToolsProtocol"]

# Reads larger than this are parsed in slices of it (_feed_slices); nginx reads a head in
# 8 KiB buffers too.
_SLICE = 8 * 1024
# Header names ``on_header`` looks at: one set lookup per header, in place of uvicorn's
# comparison with b"expect".
_NOTED = frozenset((b"host", b"expect", b"transfer-encoding"))
# uvicorn's, called without super(): this runs once per request.
_on_headers_complete = HttpToolsProtocol.on_headers_complete


class CoalescingHttpToolsProtocol(RequestLimitsProtocol):
    """``HttpToolsProtocol`` writing through a ``CoalescingTransport``, with limits on what
    a client may make it hold: a request's head (``max_head_bytes``) and the time a client
    takes to send a request (``request_timeout``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A head that starts and ends within one read's slice is never measured.
        if cls.max_head_bytes < _SLICE:
            raise ValueError(f"max_head_bytes must be at least {_SLICE}")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(CoalescingTransport(transport, self.loop))

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
        self._phase = NOTHING
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
