"""Client rules: what a client may be registered with, and what it may ask for.

Pure checks, no I/O. At registration (``ClientService.create``): the client id, the grant
types (among ``GRANT_TYPES``), the scopes (RFC 6749 scope tokens) and the audiences, each
refused with ``ClientConfigError``. In a token request: the grant type must be one of the
client's (``check_grant_type``), and the scope asked for must be a well-formed subset of
the client's (``parse_scope``, ``resolve_scope``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

from tokensmith.errors import TokensmithError
from tokensmith.store import Client, check_client_id

from .oauth_errors import InvalidScope, UnauthorizedClient

__all__ = [
    "GRANT_TYPES",
    "MAX_SCOPE_LENGTH",
    "ClientConfigError",
    "check_grant_type",
    "check_registration",
    "checked_audiences",
    "parse_scope",
    "resolve_scope",
]

GRANT_TYPES = frozenset({"password", "refresh_token", "client_credentials"})
# RFC 6749 section 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_AUDIENCE = re.compile(r"[\x21-\x7e]{1,255}")
MAX_SCOPE_LENGTH = 1024


class ClientConfigError(TokensmithError):
    """A client registration the server refuses (RFC 7591's ``invalid_client_metadata``)."""

    code = "invalid_client_metadata"
    description = "The client registration is not valid."


def check_grant_type(client: Client, grant_type: str) -> None:
    """``UnauthorizedClient`` unless the client may use ``grant_type``."""
    if grant_type not in client.grant_types:
        raise UnauthorizedClient()


def parse_scope(scope: str | None) -> tuple[str, ...] | None:
    """The scope tokens of a request, in order, without repeats; None when none were asked."""
    if scope is None or scope == "":
        return None
    return _parse_scope(scope)


# Clients ask for the same few scopes on every request. Bounded: at most 1024 texts of at
# most MAX_SCOPE_LENGTH characters; a malformed scope raises, and is never cached.
@functools.lru_cache(maxsize=1024)
def _parse_scope(scope: str) -> tuple[str, ...]:
    if len(scope) > MAX_SCOPE_LENGTH:
        raise InvalidScope("The scope parameter is too long.")
    tokens = scope.split(" ")
    if not all(_SCOPE_TOKEN.fullmatch(token) for token in tokens):
        raise InvalidScope("The scope parameter is malformed.")
    return tuple(dict.fromkeys(tokens))


def resolve_scope(allowed: Iterable[str], requested: str | None) -> tuple[str, ...]:
    """The granted scope: the requested tokens if all are allowed, else ``InvalidScope``.

    Nothing requested grants everything allowed (RFC 6749 section 3.3 lets the server pick
    a default, and the client's registration is the natural one).
    """
    allowed_tuple = tuple(allowed)
    tokens = parse_scope(requested)
    if tokens is None:
        return allowed_tuple
    if not set(tokens) <= set(allowed_tuple):
        raise InvalidScope()
    return tokens


def checked_audiences(audiences: Iterable[str]) -> list[str]:
    """The audiences as a list; ``ClientConfigError`` if one is not a valid ``aud``."""
    # Each becomes an ``aud`` of every token issued to the client: printable ASCII (a
    # name or a URI), never a control or bidirectional character.
    if isinstance(audiences, str | bytes):
        raise ClientConfigError("audiences must be a list of strings.")
    checked = list(audiences)
    for audience in checked:
        if not isinstance(audience, str) or not _AUDIENCE.fullmatch(audience):
            raise ClientConfigError("Each audience must be 1 to 255 printable ASCII characters.")
    return checked


def check_registration(
    client_id: str, confidential: bool, grants: list[str], scopes: Iterable[str]
) -> None:
    """``ClientConfigError`` unless the id, grant types and scopes may be registered."""
    try:
        check_client_id(client_id)
    except (TypeError, ValueError):
        raise ClientConfigError("client_id must be 1 to 255 printable ASCII characters.") from None
    if client_id.isdigit():
        # User tokens carry sub = the user's numeric id and client_credentials tokens
        # sub = client_id; an all-digit client_id could impersonate a user's subject.
        raise ClientConfigError("client_id must not be all digits.")
    unknown = set(grants) - GRANT_TYPES
    if unknown or not grants:
        raise ClientConfigError(f"grant_types must be among {sorted(GRANT_TYPES)}.")
    if "client_credentials" in grants and not confidential:
        # RFC 6749 section 4.4: only confidential clients may use it.
        raise ClientConfigError("A public client cannot use client_credentials.")
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE_TOKEN.fullmatch(scope):
            raise ClientConfigError("Each scope must be an RFC 6749 scope token.")
