"""The app's wiring: build_services, the lifespan, 503 and recovery, the catch-all 500."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tokensmith.clock import FixedClock
from tokensmith.server.app import (
    ServerContext,
    build_services,
    create_app,
    prune_once,
    run_pruning,
)
from tokensmith.server.http_errors import CatchAllMiddleware, exception_handlers
from tokensmith.server.settings import Settings
from tokensmith.store import DatabaseUnavailable, Repositories

from .routes.conftest import CHEAP, FORM, ISSUER, START, assert_oauth_error, basic, running

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _settings(data_dir: Path) -> Settings:
    return Settings(issuer=ISSUER, data_dir=data_dir, signing_algorithms=("ES256",))


async def test_build_services_wires_everything_and_closes(tmp_path: Path) -> None:
    clock = FixedClock(START)
    async with build_services(_settings(tmp_path), clock=clock, password_parameters=CHEAP) as ctx:
        assert ctx.keyring.signer().alg == "ES256"  # maintain gave the fresh ring a key
        assert ctx.passwords.parameters.memory_cost == CHEAP.memory_cost
        assert ctx.tokens.clock is clock and ctx.clients.clock is clock
        assert await ctx.db.ping()
        assert (tmp_path / "master.key").exists()
        await prune_once(ctx)  # the background job's body runs against the real schema
        kid = ctx.keyring.signer().kid
    # A second build reuses the same database and master key: the same key signs.
    async with build_services(_settings(tmp_path), clock=clock, password_parameters=CHEAP) as ctx:
        assert ctx.keyring.signer().kid == kid


async def test_not_before_times_outlive_a_lowered_token_lifetime(tmp_path: Path) -> None:
    # Tokens issued under the former, longer lifetime may still be alive: a not-before
    # time that revoked them must stay until they have expired.
    clock = FixedClock(START)
    day = Settings(
        issuer=ISSUER,
        data_dir=tmp_path,
        signing_algorithms=("ES256",),
        access_token_lifetime=86_400,
    )
    async with build_services(day, clock=clock, password_parameters=CHEAP) as ctx:
        async with ctx.db.transaction() as session:
            await Repositories(session).revocations.set_not_before("42", START)
    clock.set(START + 3600)
    async with build_services(_settings(tmp_path), clock=clock, password_parameters=CHEAP) as ctx:
        keep_until = ctx.keyring.policy.keep_until
        assert keep_until == START + 3600 + 86_400 + ctx.settings.leeway
        clock.set(keep_until - 1)
        await prune_once(ctx)
        async with ctx.db.read() as session:
            assert await Repositories(session).revocations.get_not_before("42") == START
        clock.set(keep_until)
        await prune_once(ctx)
        async with ctx.db.read() as session:
            assert await Repositories(session).revocations.get_not_before("42") is None


async def test_cancelled_pruning_finishes_the_pass_it_is_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A pass cancelled mid-transaction once left SQLAlchemy an unreturned connection
    # whose close ran as an orphan task and hung the event loop's shutdown.
    started, release = anyio.Event(), anyio.Event()
    finished: list[bool] = []

    async def slow_prune(ctx: object) -> None:
        started.set()
        await release.wait()
        finished.append(True)

    monkeypatch.setattr("tokensmith.server.app.prune_once", slow_prune)
    async with anyio.create_task_group() as group:
        scope = anyio.CancelScope()

        async def job() -> None:
            with scope:
                await run_pruning(cast(ServerContext, None), 0, anyio.Event())

        group.start_soon(job)
        await started.wait()
        scope.cancel()
        await anyio.sleep(0)
        release.set()
    assert finished == [True]


async def test_database_gone_then_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running(data) as server:
        await server.add_user()
        client = await server.add_client()
        assert client.secret is not None
        assert (await server.http.get("/readyz")).status_code == 200

        data.rename(tmp_path / "moved")
        await server.ctx.db.dispose()  # pooled connections would keep the old file open
        ready = await server.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"] == "temporarily_unavailable"
        login = await server.login(client)
        body = assert_oauth_error(login, 503, "temporarily_unavailable")
        assert body["code"] == "oauth_temporarily_unavailable"
        assert int(login.headers["retry-after"]) >= 1
        assert (await server.http.get("/healthz")).status_code == 200
        # The JWKS is served from memory: verifiers keep working through the outage.
        assert (await server.http.get("/.well-known/jwks.json")).status_code == 200

        (tmp_path / "moved").rename(data)
        assert (await server.http.get("/readyz")).status_code == 200
        assert (await server.login(client)).status_code == 200


async def test_unexpected_exception_is_a_bare_500(caplog: pytest.LogCaptureFixture) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("secret-detail-xyz")

    async def unavailable(request: Request) -> Response:
        raise DatabaseUnavailable()

    app = Starlette(
        routes=[Route("/boom", boom), Route("/down", unavailable)],
        middleware=[],
        exception_handlers=exception_handlers(),
    )
    app.add_middleware(CatchAllMiddleware)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        with caplog.at_level(logging.ERROR, logger="tokensmith.server"):
            response = await http.get("/boom")
        assert response.status_code == 500
        assert response.json()["error"] == "server_error"
        assert "secret-detail-xyz" not in response.text
        assert "Traceback" not in response.text
        assert any("RuntimeError" in record.getMessage() for record in caplog.records)
        down = await http.get("/down")
        assert down.status_code == 503 and down.headers["retry-after"]


async def test_garbage_never_yields_500(tmp_path: Path) -> None:
    """A spray of odd requests: each answers 4xx with a JSON error body."""
    bodies = [
        b"",
        b"=",
        b"&&&",
        b"%",
        b"%%",
        b"a=%",
        b"\x00=\x00",
        b"grant_type=\xc3",
        b"grant_type=password&username=%00&password=%00",
        b"grant_type=%F0%9F%98",
        b"grant_type=refresh_token&refresh_token=%ED%A0%80",
        b"a" * 5000,
    ]
    async with running(tmp_path) as server:
        client = await server.add_client()
        assert client.secret is not None
        for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
            for body in bodies:
                for headers in (
                    {"Content-Type": FORM},
                    {"Content-Type": FORM, **basic("web", client.secret)},
                ):
                    response = await server.http.post(path, content=body, headers=headers)
                    assert 400 <= response.status_code < 500, (path, body, response.text)
                    assert response.json()["error"]


async def test_create_app_without_lifespan_has_no_context(tmp_path: Path) -> None:
    app = create_app(_settings(tmp_path), password_parameters=CHEAP)
    assert not hasattr(app.state, "ctx")
    assert not (tmp_path / "master.key").exists()  # nothing happens before the lifespan
