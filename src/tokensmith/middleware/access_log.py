"""The access log: one line per HTTP request, handed to the logger in batches.

uvicorn's own access log builds a ``LogRecord``, runs its formatter and writes and
flushes the stream for every request: about 100 us of server CPU per request here,
more than the rest of a ``/healthz`` request. Lines here are formatted with one
f-string and kept in a buffer that goes to the ``tokensmith.access`` logger as one
record, every ``interval`` seconds or as soon as ``max_lines`` are waiting (the same
trade as nginx's ``access_log ... buffer= flush=``). A crash loses at most the lines
of the last interval; a clean stop writes them all (the app's lifespan flushes).

The line reads like uvicorn's (``INFO:     127.0.0.1:50000 - "GET /healthz HTTP/1.1"
200``), but without the query string: a client may put a token or a secret there,
and none may reach a log.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

__all__ = ["ACCESS_LOGGER", "AccessLog", "AccessLogMiddleware", "uvicorn_log_config"]

ACCESS_LOGGER = "tokensmith.access"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AccessLog:
    """The buffer of access lines and its writer."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        interval: float = 0.2,
        max_lines: int = 256,
    ) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)
        self.interval = interval
        self.max_lines = max_lines
        self._lines: list[str] = []

    def add(self, line: str) -> None:
        lines = self._lines
        lines.append(line)
        if len(lines) >= self.max_lines:
            self.flush()

    def flush(self) -> None:
        """Hand every waiting line to the logger, as one record."""
        if not self._lines:
            return
        lines, self._lines = self._lines, []
        if self.logger.isEnabledFor(logging.INFO):
            self.logger.info("%s", "\n".join(lines))

    async def run(self, stop: anyio.Event) -> None:
        """Flush every ``interval`` seconds until ``stop``, then a last time."""
        try:
            while not stop.is_set():
                with anyio.move_on_after(self.interval):
                    await stop.wait()
                self.flush()
        finally:
            self.flush()


class AccessLogMiddleware:
    """Adds one line per HTTP request to an ``AccessLog`` once the response is sent."""

    def __init__(self, app: ASGIApp, log: AccessLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            client = scope.get("client")
            where = f"{client[0]}:{client[1]}" if client else "-"
            path = scope["path"]
            if not path.isprintable() or '"' in path:
                path = _escaped(path)
            self.log.add(
                f'INFO:     {where} - "{scope["method"]} {path} '
                f'HTTP/{scope["http_version"]}" {status}'
            )


def _escaped(path: str) -> str:
    # A decoded path may hold a newline or a quote: escaped, it cannot forge a line.
    return path.encode("unicode_escape").decode("ascii").replace('"', '\\"')


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging setup plus the ``tokensmith.access`` logger, lines as they are.

    For a server that writes this access log: run uvicorn with ``access_log=False`` (its
    own would log every line twice, query strings included) and this ``log_config``.
    """
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["tokensmith_bare"] = {"format": "%(message)s"}
    config["handlers"]["tokensmith_access"] = {
        "class": "logging.StreamHandler",
        "formatter": "tokensmith_bare",
        "stream": "ext://sys.stdout",
    }
    config["loggers"][ACCESS_LOGGER] = {
        "handlers": ["tokensmith_access"],
        "level": level.upper(),
        "propagate": False,
    }
    return config
