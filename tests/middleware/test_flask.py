"""A Flask app on ``BearerAuth``, driven by Flask's test client.

The routes are those of the example application server plus ``/write`` needing scopes;
the verifier is the offline sync ``Verifier.from_jwks``.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tokensmith.errors import KeySetUnavailable
from tokensmith.middleware.flask import BearerAuth, current_claims
from tokensmith.verify import AccessClaims, Verifier

from .helpers import (
    REALM,
    Keys,
    assert_bare_challenge,
    assert_forbidden,
    assert_invalid_token,
    bad_tokens,
    secrets_of,
    sync_verifier,
    token,
)

PROTECTED = [("GET", "/me"), ("POST", "/create"), ("POST", "/delete"), ("POST", "/write")]


def build_app(verifier: Any, *, install: bool = True) -> Flask:
    app = Flask(__name__)
    app.testing = True
    auth = BearerAuth(app if install else None, verifier, realm=REALM)

    @app.get("/public")
    def public() -> dict[str, Any]:
        claims = current_claims()
        return {"message": "anyone", "sub": None if claims is None else claims.sub}

    @app.get("/me")
    @auth.require()
    def me() -> dict[str, Any]:
        claims = current_claims()
        assert isinstance(claims, AccessClaims)
        return {
            "sub": claims.sub,
            "client_id": claims.client_id,
            "roles": list(claims.roles),
            "scopes": list(claims.scopes),
            "name": claims.claims.get("name"),
        }

    @app.post("/create")
    @auth.require(roles=["EDITOR", "ADMIN"])
    def create() -> dict[str, str]:
        claims = current_claims()
        assert claims is not None
        return {"created": "ok", "by": claims.sub}

    @app.post("/delete")
    @auth.require(roles=["ADMIN"])
    def delete() -> dict[str, str]:
        claims = current_claims()
        assert claims is not None
        return {"deleted": "ok", "by": claims.sub}

    @app.post("/write")
    @auth.require(scopes=["write", "api"])
    def write() -> dict[str, str]:
        return {"written": "ok"}

    return app


@pytest.fixture
def http(keys: Keys) -> FlaskClient:
    return build_app(sync_verifier(keys)).test_client()


def bearer(value: str, scheme: str = "Bearer") -> dict[str, str]:
    return {"Authorization": f"{scheme} {value}"}


def invalid(response: TestResponse, secrets: list[str] | None = None) -> str:
    return assert_invalid_token(
        response.status_code, response.headers, response.get_json(), response.text, secrets or []
    )


def test_public_route_without_a_token(http: FlaskClient) -> None:
    response = http.get("/public")
    assert response.status_code == 200
    assert response.get_json() == {"message": "anyone", "sub": None}


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_no_token_on_a_protected_route_is_a_bare_401(
    http: FlaskClient, method: str, path: str
) -> None:
    response = http.open(path, method=method)
    assert_bare_challenge(response.status_code, response.headers, response.get_json())


def test_claims_reach_the_view(http: FlaskClient, keys: Keys) -> None:
    response = http.get("/me", headers=bearer(token(keys, client_id="demo")))
    assert response.status_code == 200, response.text
    assert response.get_json() == {
        "sub": "user-42",
        "client_id": "demo",
        "roles": ["EDITOR"],
        "scopes": ["read", "write"],
        "name": "John",
    }


def test_a_good_token_on_a_public_route_reaches_it(http: FlaskClient, keys: Keys) -> None:
    response = http.get("/public", headers=bearer(token(keys)))
    assert response.get_json() == {"message": "anyone", "sub": "user-42"}


BAD = [
    "tampered",
    "signature_cut",
    "foreign_key_same_kid",
    "unknown_kid",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "wrong_typ",
    "no_typ",
    "alg_none",
    "alg_none_signed",
    "hs256_random_secret",
    "hs256_public_pem",
    "jwk_in_header",
    "garbage",
]


@pytest.mark.parametrize("name", BAD)
def test_a_bad_token_is_401_on_protected_and_public_routes(
    http: FlaskClient, keys: Keys, name: str
) -> None:
    bad = bad_tokens(keys)[name]
    for method, path in [("GET", "/public"), *PROTECTED]:
        response = http.open(path, method=method, headers=bearer(bad))
        invalid(response, secrets_of(keys, bad))


def test_the_tampered_admin_role_does_not_delete(http: FlaskClient, keys: Keys) -> None:
    response = http.post("/delete", headers=bearer(bad_tokens(keys)["tampered"]))
    assert response.status_code == 401


def test_expired_says_so_without_details(http: FlaskClient, keys: Keys) -> None:
    response = http.get("/me", headers=bearer(bad_tokens(keys)["expired"]))
    assert invalid(response) == "The token has expired."


@pytest.mark.parametrize("header", ["Bearer", "Bearer a b", "Bearer a,b", "Bearer\tabc"])
def test_a_malformed_bearer_header_is_401(http: FlaskClient, header: str) -> None:
    for path in ("/public", "/me"):
        invalid(http.get(path, headers={"Authorization": header}))


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNzd29yZA==", "Token abc", "Digest x"])
def test_another_scheme_is_no_credential(http: FlaskClient, header: str) -> None:
    # RFC 6750 section 3.1: the bare challenge where a token is needed, none elsewhere.
    assert http.get("/public", headers={"Authorization": header}).status_code == 200
    me = http.get("/me", headers={"Authorization": header})
    assert_bare_challenge(me.status_code, me.headers, me.get_json())


def test_basic_credentials_are_not_echoed(http: FlaskClient) -> None:
    response = http.get("/me", auth=("alice", "hunter2-secret-password"))
    assert response.status_code == 401
    assert "hunter2" not in response.text
    assert "hunter2" not in response.headers["WWW-Authenticate"]


def test_two_authorization_headers_are_401(http: FlaskClient, keys: Keys) -> None:
    good = token(keys)
    headers = [("Authorization", f"Bearer {good}"), ("Authorization", f"Bearer {good}")]
    invalid(http.get("/me", headers=headers), secrets_of(keys, good))


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_the_scheme_is_case_insensitive(http: FlaskClient, keys: Keys, scheme: str) -> None:
    response = http.get("/me", headers=bearer(token(keys), scheme))
    assert response.status_code == 200, response.text


def test_a_token_in_the_query_string_is_not_accepted(http: FlaskClient, keys: Keys) -> None:
    good = token(keys, roles=["ADMIN"])
    response = http.get("/me", query_string={"access_token": good})
    assert_bare_challenge(response.status_code, response.headers, response.get_json())
    response = http.post("/delete", query_string={"access_token": good})
    assert_bare_challenge(response.status_code, response.headers, response.get_json())
    response = http.post("/delete", data={"access_token": good})
    assert_bare_challenge(response.status_code, response.headers, response.get_json())


def test_roles(http: FlaskClient, keys: Keys) -> None:
    editor = token(keys, roles=["EDITOR"])
    admin = token(keys, roles=["ADMIN"], sub="admin-1")
    nobody = token(keys, roles=None)
    assert http.post("/create", headers=bearer(editor)).get_json() == {
        "created": "ok",
        "by": "user-42",
    }
    assert http.post("/create", headers=bearer(admin)).status_code == 200
    assert http.post("/delete", headers=bearer(admin)).get_json() == {
        "deleted": "ok",
        "by": "admin-1",
    }
    for value in (editor, nobody):
        response = http.post("/delete", headers=bearer(value))
        description = assert_forbidden(
            response.status_code,
            response.headers,
            response.get_json(),
            response.text,
            secrets_of(keys, value),
        )
        assert description == "The token lacks a role this operation needs."
    assert http.post("/create", headers=bearer(nobody)).status_code == 403


def test_scopes(http: FlaskClient, keys: Keys) -> None:
    assert http.post("/write", headers=bearer(token(keys, scope="api write"))).status_code == 200
    for scope in ("write", None):
        value = token(keys, scope=scope)
        response = http.post("/write", headers=bearer(value))
        description = assert_forbidden(
            response.status_code,
            response.headers,
            response.get_json(),
            response.text,
            secrets_of(keys, value),
        )
        assert description == "The token lacks a scope this operation needs."


def test_no_key_set_is_503(keys: Keys) -> None:
    class NoKeys:
        def verify(self, token: str) -> AccessClaims:
            raise KeySetUnavailable("Last error: timed out.")

    response = build_app(NoKeys()).test_client().get("/me", headers=bearer(token(keys)))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "WWW-Authenticate" not in response.headers
    assert "timed out" not in response.text


def test_each_request_is_verified_once(keys: Keys) -> None:
    verifier: Verifier = sync_verifier(keys)
    calls: list[str] = []

    class Counting:
        def verify(self, value: str) -> AccessClaims:
            calls.append(value)
            return verifier.verify(value)

    http = build_app(Counting()).test_client()
    good = token(keys)
    assert http.post("/create", headers=bearer(good)).status_code == 200
    assert calls == [good]
    assert http.get("/public").status_code == 200
    assert calls == [good]


def test_require_without_init_app_is_a_clear_error(keys: Keys) -> None:
    http = build_app(sync_verifier(keys), install=False).test_client()
    with pytest.raises(RuntimeError, match="BearerAuth is not installed"):
        http.get("/me", headers=bearer(token(keys)))


def test_bearer_auth_without_a_verifier_is_a_clear_error(keys: Keys) -> None:
    http = build_app(None).test_client()
    with pytest.raises(RuntimeError, match="needs a verifier"):
        http.get("/public")


def test_init_app_later(keys: Keys) -> None:
    app = Flask(__name__)
    auth = BearerAuth(verifier=sync_verifier(keys))
    auth.init_app(app)

    @app.get("/me")
    @auth.require()
    def me() -> dict[str, Any]:
        claims = current_claims()
        assert claims is not None
        return {"sub": claims.sub}

    http = app.test_client()
    assert http.get("/me", headers=bearer(token(keys))).get_json() == {"sub": "user-42"}
    assert http.get("/me").headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize("realm", ['a"b', "a\\b"])
def test_a_realm_that_would_break_the_header_is_refused(realm: str) -> None:
    with pytest.raises(ValueError, match="realm"):
        BearerAuth(realm=realm)
