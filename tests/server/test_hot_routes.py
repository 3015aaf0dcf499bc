"""HotRoutes: the token endpoint before the router, answered as the router would answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tokensmith.server.app import create_app
from tokensmith.server.hot_routes import HotRoutes
from tokensmith.server.http_errors import CatchAllMiddleware, exception_handlers
from tokensmith.server.routes.oauth import token
from tokensmith.server.services import InvalidGrant, OAuthError
from tokensmith.server.settings import Settings
from tokensmith.store import DatabaseUnavailable

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Boom(Exception):
    pass


async def _raises(request: Request) -> Response:
    kind = (await request.body()).decode()
    if kind == "grant":
        raise InvalidGrant()  # a subclass of OAuthError: found through the MRO
    if kind == "database":
        raise DatabaseUnavailable("down")
    if kind == "boom":
        raise Boom("no handler for this")
    # The router puts the endpoint in the scope; HotRoutes calls the handler directly.
    served_by = "router" if "endpoint" in request.scope else "hot"
    return PlainTextResponse(
        f"ok {request.method} {request.url.path}", headers={"x-served-by": served_by}
    )


async def _routed(request: Request) -> Response:
    return PlainTextResponse("routed")


def _app(*, hot: bool) -> Starlette:
    middleware = [Middleware(CatchAllMiddleware)]
    if hot:
        middleware.append(
            Middleware(
                HotRoutes,
                routes={("POST", "/hot"): _raises},
                error_handlers=exception_handlers(),
            )
        )
    return Starlette(
        routes=[
            Route("/hot", _raises, methods=["POST"]),
            Route("/other", _routed, methods=["GET", "POST"]),
        ],
        middleware=middleware,
        exception_handlers=exception_handlers(),
    )


async def _answers(
    app: Starlette, method: str, path: str, body: bytes = b"", root_path: str = ""
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, root_path=root_path)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        return await http.request(method, path, content=body)


@pytest.mark.parametrize("body", [b"", b"grant", b"database", b"boom"])
async def test_a_hot_route_answers_exactly_as_the_router_does(body: bytes) -> None:
    hot = await _answers(_app(hot=True), "POST", "/hot", body)
    routed = await _answers(_app(hot=False), "POST", "/hot", body)
    assert (hot.status_code, hot.content) == (routed.status_code, routed.content)
    assert hot.headers.get("cache-control") == routed.headers.get("cache-control")
    assert hot.headers.get("retry-after") == routed.headers.get("retry-after")
    if body == b"":
        assert hot.headers["x-served-by"] == "hot" and routed.headers["x-served-by"] == "router"
    if body == b"grant":
        assert hot.status_code == 400 and hot.json()["error"] == "invalid_grant"
    if body == b"boom":  # no handler: the catch-all outside answers, as from the router
        assert hot.status_code == 500 and hot.json()["error"] == "server_error"


async def test_other_methods_and_paths_go_to_the_router() -> None:
    app = _app(hot=True)
    assert (await _answers(app, "GET", "/hot")).status_code == 405
    other = await _answers(app, "POST", "/other")
    assert other.status_code == 200 and other.text == "routed"
    assert (await _answers(app, "POST", "/hot/")).status_code == 307  # the router redirects


def test_error_handlers_are_found_by_the_exception_class_then_its_bases() -> None:
    hot = HotRoutes(_routed, routes={}, error_handlers=exception_handlers())
    assert hot._error_handler(InvalidGrant()) is exception_handlers()[OAuthError]
    assert hot._error_handler(Boom()) is None
    assert "HotRoutes" in repr(hot)


async def test_behind_a_root_path_the_router_decides() -> None:
    # The router matches the path without the root_path; HotRoutes leaves such requests.
    answer = await _answers(_app(hot=True), "POST", "/api/hot", root_path="/api")
    assert answer.status_code == 200 and answer.headers["x-served-by"] == "router"


def test_the_token_endpoint_is_wired_as_a_hot_route(tmp_path: Path) -> None:
    app = create_app(Settings(issuer="http://127.0.0.1:8000", data_dir=tmp_path))
    hot = [m for m in app.user_middleware if m.cls is HotRoutes]
    assert len(hot) == 1
    assert hot[0].kwargs["routes"] == {("POST", "/oauth/token"): token}
    assert hot[0].kwargs["error_handlers"] == app.exception_handlers
    # Innermost of the app's own middleware: the catch-all answers what it raises.
    assert app.user_middleware[-1].cls is HotRoutes
