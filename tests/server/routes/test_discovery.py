"""Discovery documents, the JWKS (ETag, 304, caching, public members only), OpenAPI, health."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.routing import Mount, Route

from tokensmith.jose import JWKSet
from tokensmith.server.routes.discovery import server_metadata
from tokensmith.server.settings import Settings
from tokensmith.server.settings_model import Algorithm

from .conftest import ISSUER, running

pytestmark = pytest.mark.anyio

_PRIVATE = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
async def test_metadata(tmp_path: Path, path: str) -> None:
    async with running(tmp_path) as server:
        response = await server.http.get(path)
        assert response.status_code == 200
        meta = response.json()
        assert meta["issuer"] == ISSUER
        assert meta["jwks_uri"] == f"{ISSUER}/.well-known/jwks.json"
        assert meta["token_endpoint"] == f"{ISSUER}/oauth/token"
        assert meta["revocation_endpoint"] == f"{ISSUER}/oauth/revoke"
        assert meta["introspection_endpoint"] == f"{ISSUER}/oauth/introspect"
        assert set(meta["grant_types_supported"]) == {
            "password",
            "refresh_token",
            "client_credentials",
        }
        assert "client_secret_basic" in meta["token_endpoint_auth_methods_supported"]
        assert "client_secret_post" in meta["token_endpoint_auth_methods_supported"]
        assert "none" in meta["token_endpoint_auth_methods_supported"]
        # Introspection refuses public clients, so it does not offer "none".
        assert meta["introspection_endpoint_auth_methods_supported"] == [
            "client_secret_basic",
            "client_secret_post",
        ]
        assert meta["id_token_signing_alg_values_supported"] == ["ES256"]


@pytest.mark.parametrize(
    ("algorithms", "announced"),
    [
        (("EdDSA", "HS256", "RS256"), ["EdDSA", "RS256"]),
        (("HS256",), None),  # its secret is not in the JWKS: nothing to announce
    ],
)
def test_metadata_announces_the_published_algorithms_only(
    tmp_path: Path, algorithms: tuple[Algorithm, ...], announced: list[str] | None
) -> None:
    secret = "q7Zr0pXv3NfLk9WtBc2MhYs8JdGa5EuR1iOw6TnPb4K"
    settings = Settings(data_dir=tmp_path, signing_algorithms=algorithms, hs256_secret=secret)
    assert server_metadata(settings).get("id_token_signing_alg_values_supported") == announced


async def test_jwks_public_only_with_cache_headers(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        response = await server.http.get("/.well-known/jwks.json")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "public, max-age=" + str(
            server.ctx.settings.jwks_max_age
        )
        etag = response.headers["etag"]
        assert etag.startswith('"') and etag.endswith('"')
        document = json.loads(response.content)
        assert document["keys"], "a fresh server publishes its first key"
        for key in document["keys"]:
            assert not _PRIVATE & key.keys()
            assert key["kty"] != "oct"
            assert key["use"] == "sig" and key["alg"] == "ES256" and key["kid"]
        keys = JWKSet.from_json(response.text)
        assert all(not key.is_private for key in keys)


@pytest.mark.parametrize(
    "template", ["{etag}", "W/{etag}", '"other", {etag}', '"a",W/{etag} ', "*"]
)
async def test_jwks_304(tmp_path: Path, template: str) -> None:
    async with running(tmp_path) as server:
        etag = (await server.http.get("/.well-known/jwks.json")).headers["etag"]
        response = await server.http.get(
            "/.well-known/jwks.json", headers={"If-None-Match": template.format(etag=etag)}
        )
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == etag
        assert response.headers["cache-control"].startswith("public, max-age=")


async def test_jwks_304_for_a_tag_in_a_second_if_none_match_field(tmp_path: Path) -> None:
    # Several fields of one list-valued header are one list (RFC 9110 section 5.3).
    async with running(tmp_path) as server:
        etag = (await server.http.get("/.well-known/jwks.json")).headers["etag"]
        headers = httpx.Headers([("If-None-Match", '"x"'), ("If-None-Match", etag)])
        response = await server.http.get("/.well-known/jwks.json", headers=headers)
        assert response.status_code == 304


async def test_jwks_stale_etag_gets_the_body(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        response = await server.http.get("/.well-known/jwks.json", headers={"If-None-Match": '"x"'})
        assert response.status_code == 200
        assert json.loads(response.content)["keys"]


async def test_openapi(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        response = await server.http.get("/openapi.json")
        assert response.status_code == 200
        document = response.json()
        assert document["openapi"].startswith("3.1")
        for path in (
            "/oauth/token",
            "/oauth/revoke",
            "/oauth/introspect",
            "/oauth/revocations",
            "/.well-known/jwks.json",
            "/healthz",
            "/readyz",
        ):
            assert path in document["paths"]


async def test_openapi_documents_every_route_and_method(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        document = (await server.http.get("/openapi.json")).json()
        served: set[tuple[str, str]] = set()
        for route in server.app.routes:
            children = route.routes if isinstance(route, Mount) else [route]
            prefix = route.path if isinstance(route, Mount) else ""
            for child in children:
                assert isinstance(child, Route)
                methods = (child.methods or set()) - {"HEAD"}
                served |= {(prefix + child.path, m.lower()) for m in methods}
        documented = {(path, method) for path, item in document["paths"].items() for method in item}
        assert served == documented
        admin = document["paths"]["/admin/users"]["post"]
        assert admin["security"] == [{"bearer": []}]


async def test_health(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        assert (await server.http.get("/healthz")).json() == {"status": "ok"}
        assert (await server.http.get("/readyz")).status_code == 200


async def test_not_found_and_method_are_json(tmp_path: Path) -> None:
    async with running(tmp_path) as server:
        missing = await server.http.get("/nope")
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        wrong = await server.http.get("/oauth/token")
        assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
