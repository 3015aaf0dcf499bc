"""The batched access log: one line per request, no query string, escaped paths."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tokensmith.middleware.access_log import AccessLog, AccessLogMiddleware

pytestmark = pytest.mark.anyio


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def records() -> Records:
    return Records()


@pytest.fixture
def log(records: Records) -> AccessLog:
    logger = logging.getLogger("tests.access")
    logger.handlers[:] = [records]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return AccessLog(logger, interval=0.05, max_lines=3)


async def ok(request: Request) -> Response:
    return PlainTextResponse("ok", status_code=201 if request.method == "POST" else 200)


async def boom(request: Request) -> Response:
    raise RuntimeError("failed before answering")


def client(log: AccessLog) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/{path:path}", ok, methods=["GET", "POST"])])
    wrapped: Any = AccessLogMiddleware(app, log)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t")


async def test_lines_wait_for_a_flush_then_go_as_one_record(
    log: AccessLog, records: Records
) -> None:
    async with client(log) as http:
        await http.get("/healthz")
        await http.post("/oauth/token")
    assert records.messages == []  # buffered: nothing written per request
    log.flush()
    [message] = records.messages
    assert message.splitlines() == [
        'INFO:     127.0.0.1:123 - "GET /healthz HTTP/1.1" 200',
        'INFO:     127.0.0.1:123 - "POST /oauth/token HTTP/1.1" 201',
    ]
    log.flush()
    assert len(records.messages) == 1  # nothing left to write


async def test_a_full_buffer_is_written_at_once(log: AccessLog, records: Records) -> None:
    async with client(log) as http:
        for _ in range(4):
            await http.get("/x")
    assert len(records.messages) == 1 and len(records.messages[0].splitlines()) == 3
    log.flush()
    assert len(records.messages[1].splitlines()) == 1


async def test_no_query_string_and_no_forged_lines(log: AccessLog, records: Records) -> None:
    async with client(log) as http:
        await http.get("/feed", params={"access_token": "eyJsecret.payload.sig"})
        await http.get("/a%0AINFO:     forged%22line")
    log.flush()
    [message] = records.messages
    assert "eyJsecret" not in message and "access_token" not in message
    lines = message.splitlines()
    assert len(lines) == 2
    # (404: the route pattern stops at the newline; the line is what matters)
    assert lines[1] == 'INFO:     127.0.0.1:123 - "GET /a\\nINFO:     forged\\"line HTTP/1.1" 404'


async def test_a_failing_app_is_logged_as_500(log: AccessLog, records: Records) -> None:
    app: Any = AccessLogMiddleware(Starlette(routes=[Route("/boom", boom)]), log)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t"
    ) as http:
        await http.get("/boom")
    log.flush()
    assert records.messages[0].endswith('"GET /boom HTTP/1.1" 500')


async def test_the_writer_flushes_on_its_interval_and_at_stop(
    log: AccessLog, records: Records
) -> None:
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(log.run, stop)
        log.add("first")
        with anyio.fail_after(5):
            while not records.messages:
                await anyio.sleep(0.01)
        assert records.messages == ["first"]
        log.add("last")
        stop.set()
    assert records.messages == ["first", "last"]


async def test_nothing_is_formatted_when_info_is_off(log: AccessLog, records: Records) -> None:
    log.logger.setLevel(logging.WARNING)
    log.add("dropped")
    log.flush()
    assert records.messages == []
