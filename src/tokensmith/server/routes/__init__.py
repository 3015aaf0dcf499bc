"""The HTTP routes: thin handlers that parse, call one service, and render.

Every handler reads the services from ``request.app.state.ctx`` (a ``ServerContext``
set by the app's lifespan). Errors are raised, never rendered here: ``http_errors``
renders them all.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route, Router

from tokensmith.server.settings import Settings

from .admin_ops import ops_routes
from .admin_users import user_routes
from .discovery import Discovery
from .health import healthz, readyz
from .oauth import introspect, revocations, revoke, token

__all__ = ["routes"]


def routes(settings: Settings) -> list[BaseRoute]:
    """Every route of the app; the documents that depend only on settings render now."""
    discovery = Discovery(settings)
    # Starlette tries the routes in order, a regex match each, and no two of these paths
    # overlap: the hottest (the token endpoint) comes first so it pays for no misses.
    return [
        Route("/oauth/token", token, methods=["POST"]),
        Route("/oauth/revoke", revoke, methods=["POST"]),
        Route("/oauth/introspect", introspect, methods=["POST"]),
        Route("/oauth/revocations", revocations, methods=["GET"]),
        Route("/.well-known/openid-configuration", discovery.metadata, methods=["GET"]),
        Route("/.well-known/oauth-authorization-server", discovery.metadata, methods=["GET"]),
        Route("/.well-known/jwks.json", discovery.jwks, methods=["GET"]),
        Route("/openapi.json", discovery.openapi, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        # The admin API: a bearer token for audience {issuer}/admin with role ADMIN.
        # Its own router, so its own redirect_slashes to turn off (see create_app).
        Mount("/admin", app=Router([*user_routes(), *ops_routes()], redirect_slashes=False)),
    ]
