"""Discovery (RFC 8414), the JWKS and the OpenAPI document.

The discovery and OpenAPI documents depend only on settings: rendered once when the app
is built. The JWKS body and its ETag are rendered by the key ring once per change, so a
JWKS request costs a dict lookup and a header comparison.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tokensmith.keys import is_published_alg
from tokensmith.server.openapi import openapi_document
from tokensmith.server.settings import Settings

from ._context import context

__all__ = ["Discovery", "etag_matches", "server_metadata"]

_JSON = "application/json"


def _render(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def server_metadata(settings: Settings) -> dict[str, Any]:
    """RFC 8414 section 2 metadata; only registered names."""
    base = settings.issuer.rstrip("/")
    confidential_auth = ["client_secret_basic", "client_secret_post"]
    client_auth = [*confidential_auth, "none"]
    document: dict[str, Any] = {
        "issuer": settings.issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "introspection_endpoint": f"{base}/oauth/introspect",
        "grant_types_supported": ["password", "refresh_token", "client_credentials"],
        # REQUIRED by RFC 8414, though there is no authorization endpoint: none.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": client_auth,
        "revocation_endpoint_auth_methods_supported": client_auth,
        # Public clients ("none") may not introspect: see routes/oauth.py, _confidential.
        "introspection_endpoint_auth_methods_supported": confidential_auth,
    }
    # The algorithms of the JWKS keys, under the name OpenID-aware verifiers (ours
    # included) read for an issuer's signing algorithms: access tokens are signed by
    # the same keys. HS256 is never announced: its secret is not in the JWKS.
    announced = [alg for alg in settings.signing_algorithms if is_published_alg(alg)]
    if announced:
        document["id_token_signing_alg_values_supported"] = announced
    return document


def etag_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 section 13.1.2: a list of (possibly weak) tags, or ``*``; weak comparison."""
    if header is None:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == wanted:
            return True
    return False


class Discovery:
    """The handlers of the documents; built once per app."""

    def __init__(self, settings: Settings) -> None:
        self._metadata = _render(server_metadata(settings))
        self._openapi = _render(openapi_document(settings))
        self._jwks_cache = f"public, max-age={settings.jwks_max_age}"

    async def metadata(self, request: Request) -> Response:
        return Response(self._metadata, media_type=_JSON)

    async def openapi(self, request: Request) -> Response:
        return Response(self._openapi, media_type=_JSON)

    async def jwks(self, request: Request) -> Response:
        body, etag = context(request).keyring.jwks()
        headers = {"ETag": etag, "Cache-Control": self._jwks_cache}
        # Several If-None-Match fields are one list (RFC 9110 section 5.3).
        if etag_matches(",".join(request.headers.getlist("if-none-match")) or None, etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/jwk-set+json", headers=headers)
