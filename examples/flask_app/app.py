"""The four routes of ``examples/app_server`` on Flask, with the sync verifier."""

from __future__ import annotations

from typing import Any

from flask import Flask

from tokensmith.middleware.flask import BearerAuth, current_claims
from tokensmith.verify import AccessClaims, Verifier

__all__ = ["create_app"]


def _claims() -> AccessClaims:
    claims = current_claims()
    assert claims is not None  # require() let the request through
    return claims


def create_app(verifier: Verifier) -> Flask:
    app = Flask(__name__)
    auth = BearerAuth(app, verifier, realm="app")

    @app.get("/public")
    def public() -> dict[str, str]:
        return {"message": "anyone may read this"}

    @app.get("/me")
    @auth.require()
    def me() -> dict[str, Any]:
        claims = _claims()
        return {
            "sub": claims.sub,
            "client_id": claims.client_id,
            "roles": list(claims.roles),
            "scopes": list(claims.scopes),
            "name": claims.claims.get("name"),
            "exp": claims.exp,
        }

    @app.post("/create")
    @auth.require(roles=["EDITOR", "ADMIN"])
    def create() -> dict[str, str]:
        return {"created": "ok", "by": _claims().sub}

    @app.post("/delete")
    @auth.require(roles=["ADMIN"])
    def delete() -> dict[str, str]:
        return {"deleted": "ok", "by": _claims().sub}

    return app
