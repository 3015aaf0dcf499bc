"""What ``CoalescingHttpToolsProtocol`` does past the usual request: its limits.

The protocol (http_protocol.py) bounds what a client can make the server hold
(httptools buffers a header line however long, and uvicorn has no timeout for a request
in progress):

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

``RequestLimitsProtocol`` holds the per-connection state of these limits and what the
reading path (``CoalescingHttpToolsProtocol`` in http_protocol.py, its subclass) calls
only for a head that needs a closer look, a read that leaves a request incomplete, or a
request refused: the closer look at a head, the deadline watch, the refusals.
"""

from __future__ import annotations

import asyncio
import json
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

# What a connection's deadline watch is watching (``_phase``).
NOTHING, _HEAD, _BODY, _GAP = 0, 1, 2, 3
# A timer may run a little before its time (asyncio's clock resolution).
_TIMER_SLACK = 0.001


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that will not be served (the
    answer is in ``_refusal``)."""


class RequestLimitsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` with limits on what a client may make it hold: a request's
    head (``max_head_bytes``) and the time a client takes to send a request
    (``request_timeout``). ``CoalescingHttpToolsProtocol`` reads requests with them."""

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
    _phase: int = NOTHING
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

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        super().connection_lost(exc)

    # A head that needs a closer look (on_headers_complete), and a request the parser stopped.

    def _invalid(self) -> None:
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            self._refuse(*refusal)
        else:
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)

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
        return NOTHING, None

    def _incomplete(self, data: bytes) -> None:
        """Count a head's bytes, note a body's progress, and watch the deadline."""
        if self.transport.is_closing():
            return
        phase, key = self._pending()
        if phase == NOTHING:
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
