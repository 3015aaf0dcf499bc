"""Bearer-token protection for application servers (RFC 6750), on ``tokensmith.verify``.

- ``BearerAuthMiddleware`` (ASGI: Starlette, FastAPI) verifies a presented token once per
  request and puts its ``AccessClaims`` on the request; ``require`` (in
  ``tokensmith.middleware.fastapi``) is the FastAPI dependency that demands a token, roles
  and scopes.
- ``BearerAuth`` (in ``tokensmith.middleware.flask``) does the same for Flask.

The framework modules are imported by name so that neither framework is needed to use
the other.
"""

from .asgi import BearerAuthMiddleware, claims_of
from .bearer import AuthError, Forbidden, InvalidBearer, MissingBearer, parse_authorization

__all__ = [
    "AuthError",
    "BearerAuthMiddleware",
    "Forbidden",
    "InvalidBearer",
    "MissingBearer",
    "claims_of",
    "parse_authorization",
]
