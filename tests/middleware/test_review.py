"""The security review's findings on both frameworks, with real tokens from a real key.

- A 403 for a missing scope names the scopes the route needs (RFC 6750 section 3:
  ``scope="..."``); a 403 for a missing role has no ``scope`` attribute.
- No text an application passes to an ``AuthError`` (a claim value, say) can leave its
  quoted-string in ``WWW-Authenticate``: quotes, backslashes, CR/LF, non-ASCII.
- A Flask blueprint's ``errorhandler(Exception)`` does not turn ``require``'s 401/403
  into its own 500 (Flask asks a blueprint's handlers before the application's).
- ``require(roles="ADMIN")`` is refused when the route is declared: a string is not a
  list of roles (it would read as the roles A, D, M, I, N).
- A verifier that cannot get the issuer's keys answers 503 with ``Retry-After``, never
  401, and serves 200 again once the issuer is back and the cooldown has passed.
"""

from __future__ import annotations

import re
import time
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from flask import Blueprint, Flask

from tokensmith.clock import FixedClock
from tokensmith.middleware import BearerAuthMiddleware, Forbidden, InvalidBearer
from tokensmith.middleware.fastapi import require
from tokensmith.middleware.flask import BearerAuth, current_claims
from tokensmith.verify import AccessClaims, AsyncVerifier, JWKSCachePolicy, Verifier

from .helpers import REALM, Keys, assert_bare_challenge, async_verifier, config, sync_verifier
from .helpers import token as make_token

BASE = "http://app.test"
JWKS_URI = "https://auth.example.test/jwks"
#: RFC 6750 section 3: one Bearer challenge whose attribute values are quoted-strings of
#: %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash, nothing outside printable ASCII).
_VALUE = r'"[\x20\x21\x23-\x5b\x5d-\x7e]*"'
_CHALLENGE = re.compile(rf"Bearer [a-z_]+={_VALUE}(, [a-z_]+={_VALUE})*")
#: A claim a user may choose (a display name), made to break a header out of shape.
HOSTILE_NAME = 'Jo"hn\\", error="invalid_token"\r\nX-Injected: 1 \u00e9\u202e'


def attributes(challenge: str) -> dict[str, str]:
    """The challenge's attributes, after checking it is one well-formed Bearer challenge."""
    assert _CHALLENGE.fullmatch(challenge), challenge
    found = re.findall(r'([a-z_]+)="([^"]*)"', challenge)
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), challenge
    return dict(found)


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


# -- FastAPI ----------------------------------------------------------------------------


def fastapi_app(verifier: Any) -> FastAPI:
    app = FastAPI()
    app.add_middleware(BearerAuthMiddleware, verifier=verifier, realm=REALM)

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {"message": "anyone"}

    @app.get("/me")
    async def me(claims: Annotated[AccessClaims, Depends(require())]) -> dict[str, str]:
        return {"sub": claims.sub}

    @app.post("/delete")
    async def delete(claims: Annotated[AccessClaims, Depends(require(roles=["ADMIN"]))]) -> None:
        return None

    @app.post("/write")
    async def write(
        claims: Annotated[AccessClaims, Depends(require(scopes=["write", "api"]))],
    ) -> None:
        return None

    @app.get("/tenant")
    async def tenant(claims: Annotated[AccessClaims, Depends(require())]) -> None:
        # An application's own refusal, naming a claim value it was given.
        raise Forbidden(f"No tenant for {claims.claims['name']}.")

    @app.get("/session")
    async def session(claims: Annotated[AccessClaims, Depends(require())]) -> None:
        raise InvalidBearer(f"Session of {claims.claims['name']} ended.")

    return app


async def fastapi_call(verifier: Any, method: str, path: str, value: str | None) -> httpx.Response:
    transport = httpx.ASGITransport(app=fastapi_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        return await http.request(method, path, headers={} if value is None else bearer(value))


@pytest.mark.anyio
async def test_fastapi_a_missing_scope_names_the_needed_scopes(keys: Keys) -> None:
    response = await fastapi_call(async_verifier(keys), "POST", "/write", make_token(keys))
    assert response.status_code == 403
    found = attributes(response.headers["www-authenticate"])
    assert found["error"] == "insufficient_scope"
    assert found["scope"] == "write api"

    response = await fastapi_call(async_verifier(keys), "POST", "/delete", make_token(keys))
    assert response.status_code == 403
    assert "scope" not in attributes(response.headers["www-authenticate"])


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/tenant", "/session"])
async def test_fastapi_an_app_description_cannot_break_the_challenge(keys: Keys, path: str) -> None:
    value = make_token(keys, name=HOSTILE_NAME)
    response = await fastapi_call(async_verifier(keys), "GET", path, value)
    assert response.status_code in (401, 403)
    found = attributes(response.headers["www-authenticate"])
    assert found["realm"] == REALM
    assert found["error"] == ("insufficient_scope" if path == "/tenant" else "invalid_token")
    assert "x-injected" not in response.headers
    assert response.json()["error_description"] == found["error_description"]


def test_fastapi_require_refuses_a_string_of_roles_or_scopes() -> None:
    with pytest.raises(TypeError, match="roles"):
        require(roles="ADMIN")
    with pytest.raises(TypeError, match="scopes"):
        require(scopes="write")
    with pytest.raises(ValueError, match="scope"):
        require(scopes=["write api"])
    with pytest.raises(ValueError, match="scope"):
        require(scopes=['a"b'])


@pytest.mark.anyio
async def test_fastapi_no_keys_is_503_then_200_once_the_issuer_is_back(keys: Keys) -> None:
    issuer = Issuer(keys)
    clock = FixedClock(time.time())
    verifier = AsyncVerifier(
        config(jwks_uri=JWKS_URI), clock=clock, transport=httpx.MockTransport(issuer)
    )
    app = fastapi_app(verifier)
    transport = httpx.ASGITransport(app=app)
    value = make_token(keys)
    async with verifier, httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        for _ in range(3):  # 503 for as long as there is no key set, not 401
            response = await http.get("/me", headers=bearer(value))
            assert response.status_code == 503
            assert response.headers["retry-after"] == "5"
            assert "www-authenticate" not in response.headers
            assert response.json()["error"] == "temporarily_unavailable"
            assert value not in response.text
        assert (await http.get("/public")).status_code == 200  # no token: not held up
        issuer.down = False
        clock.advance(JWKSCachePolicy().cooldown + 1)
        response = await http.get("/me", headers=bearer(value))
        assert response.status_code == 200, response.text


class Issuer:
    """The issuer's JWKS endpoint, unreachable until ``down`` is cleared."""

    def __init__(self, keys: Keys) -> None:
        self.keys = keys
        self.down = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        assert str(request.url) == JWKS_URI
        return httpx.Response(200, json=self.keys.public.to_dict())


# -- Flask ------------------------------------------------------------------------------


def flask_app(verifier: Any, *, blueprint_catch_all: bool = False, debug: bool = False) -> Flask:
    app = Flask(__name__)
    app.debug = debug
    auth = BearerAuth(app, verifier, realm=REALM)
    api = Blueprint("api", __name__)

    @api.get("/me")
    @auth.require()
    def me() -> dict[str, Any]:
        claims = current_claims()
        assert claims is not None
        return {"sub": claims.sub}

    @api.post("/delete")
    @auth.require(roles=["ADMIN"])
    def delete() -> dict[str, str]:
        return {"deleted": "ok"}

    @api.post("/write")
    @auth.require(scopes=["write", "api"])
    def write() -> dict[str, str]:
        return {"written": "ok"}

    @api.get("/tenant")
    @auth.require()
    def tenant() -> dict[str, str]:
        claims = current_claims()
        assert claims is not None
        raise Forbidden(f"No tenant for {claims.claims['name']}.")

    if blueprint_catch_all:
        # A common pattern: the API's unexpected errors as JSON 500s.
        @api.errorhandler(Exception)
        def internal(exc: Exception) -> tuple[dict[str, str], int]:
            return {"error": "internal"}, 500

    app.register_blueprint(api)
    return app


@pytest.mark.parametrize("debug", [False, True])
def test_flask_a_blueprint_catch_all_does_not_swallow_the_refusals(keys: Keys, debug: bool) -> None:
    http = flask_app(sync_verifier(keys), blueprint_catch_all=True, debug=debug).test_client()
    response = http.get("/me")
    assert_bare_challenge(response.status_code, response.headers, response.get_json())
    response = http.post("/delete", headers=bearer(make_token(keys)))
    assert response.status_code == 403
    assert attributes(response.headers["WWW-Authenticate"])["error"] == "insufficient_scope"
    assert response.get_json()["error"] == "insufficient_scope"
    assert http.get("/me", headers=bearer(make_token(keys))).status_code == 200


def test_flask_a_missing_scope_names_the_needed_scopes(keys: Keys) -> None:
    http = flask_app(sync_verifier(keys)).test_client()
    response = http.post("/write", headers=bearer(make_token(keys)))
    assert response.status_code == 403
    assert attributes(response.headers["WWW-Authenticate"])["scope"] == "write api"
    response = http.post("/delete", headers=bearer(make_token(keys)))
    assert "scope" not in attributes(response.headers["WWW-Authenticate"])


def test_flask_an_app_description_cannot_break_the_challenge(keys: Keys) -> None:
    http = flask_app(sync_verifier(keys)).test_client()
    response = http.get("/tenant", headers=bearer(make_token(keys, name=HOSTILE_NAME)))
    assert response.status_code == 403
    found = attributes(response.headers["WWW-Authenticate"])
    assert found["error"] == "insufficient_scope"
    assert "X-Injected" not in response.headers
    assert response.get_json()["error_description"] == found["error_description"]


def test_flask_require_refuses_a_string_of_roles_or_scopes(keys: Keys) -> None:
    auth = BearerAuth(verifier=sync_verifier(keys))
    with pytest.raises(TypeError, match="roles"):
        auth.require(roles="ADMIN")
    with pytest.raises(TypeError, match="scopes"):
        auth.require(scopes="write")
    with pytest.raises(ValueError, match="scope"):
        auth.require(scopes=["write api"])


def test_flask_no_keys_is_503_then_200_once_the_issuer_is_back(keys: Keys) -> None:
    issuer = Issuer(keys)
    clock = FixedClock(time.time())
    value = make_token(keys)
    with Verifier(
        config(jwks_uri=JWKS_URI), clock=clock, transport=httpx.MockTransport(issuer)
    ) as verifier:
        http = flask_app(verifier).test_client()
        for _ in range(3):
            response = http.get("/me", headers=bearer(value))
            assert response.status_code == 503
            assert response.headers["Retry-After"] == "5"
            assert "WWW-Authenticate" not in response.headers
            assert value not in response.text
        issuer.down = False
        clock.advance(JWKSCachePolicy().cooldown + 1)
        assert http.get("/me", headers=bearer(value)).status_code == 200
