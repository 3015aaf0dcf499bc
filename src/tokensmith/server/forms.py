"""Strict parsing of ``application/x-www-form-urlencoded`` bodies and of client credentials.

Written against the standard library instead of python-multipart: the token endpoints
take small ASCII forms, and a strict parser of our own refuses what a lenient one would
silently repair (repeated or unknown parameters, stray ``%``, non-UTF-8 escapes). Every
refusal is an ``OAuthError`` (400 ``invalid_request``, or 401 ``invalid_client``), so
nothing a client sends reaches the 500 handler.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import ClientDisconnect, Request

from tokensmith.server.services import InvalidClient, InvalidRequest

__all__ = [
    "AUTH_PARAMETERS",
    "MAX_BODY",
    "MAX_FIELDS",
    "MAX_TOKEN_VALUE",
    "MAX_VALUE",
    "ClientCredentials",
    "check_content_type",
    "client_address",
    "client_credentials",
    "parse_pairs",
    "query_number",
    "read_body",
    "read_form",
    "read_query",
]

MAX_BODY = 64 * 1024
MAX_FIELDS = 50
MAX_VALUE = 4096
#: Tokens handed to revoke/introspect: access tokens may reach the JOSE core's 8 KiB cap.
MAX_TOKEN_VALUE = 8192
AUTH_PARAMETERS = frozenset({"client_id", "client_secret"})
_FORM_TYPE = "application/x-www-form-urlencoded"
# A '%' must start an escape; parse_qsl would keep "%zz" as literal text.
_NUMBER = re.compile(r"[0-9]{1,18}")  # below 2**63: a SQL integer on every backend
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    client_id: str
    secret: str | None
    method: str  # client_secret_basic | client_secret_post | none

    def __repr__(self) -> str:
        return f"ClientCredentials({self.client_id!r}, method={self.method!r})"


def single_header(request: Request, name: str) -> str | None:
    """A header that may appear once (``name`` in lower case); ``InvalidRequest`` if it
    appears more: which one a proxy or a framework would read is anyone's guess."""
    values = request.headers.getlist(name)
    if len(values) > 1:
        raise InvalidRequest(f"The {name} header appears more than once.")
    return values[0] if values else None


def check_content_type(header: str | None, media_type: str) -> None:
    """``InvalidRequest`` unless ``header`` is ``media_type``, with no charset but UTF-8."""
    media, *params = (part.strip() for part in (header or "").split(";"))
    if media.lower() != media_type:
        raise InvalidRequest(f"The body must be {media_type}.")
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset" or value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise InvalidRequest("Only the UTF-8 charset is accepted.")


async def read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        # ASCII digits only: str.isdigit takes "²", which int() refuses, and a
        # 5000-digit number is past int()'s own limit.
        if not (length.isascii() and length.isdigit()):
            raise InvalidRequest("The Content-Length header is malformed.")
        if len(length) > 9 or int(length) > MAX_BODY:
            raise InvalidRequest("The request body is too large.")
    chunks = bytearray()
    try:
        async for chunk in request.stream():
            chunks += chunk
            if len(chunks) > MAX_BODY:
                # Stop reading: a client must not make us buffer an unbounded body.
                raise InvalidRequest("The request body is too large.")
    except ClientDisconnect:
        raise InvalidRequest("The request body was cut short.") from None
    return bytes(chunks)


def _plain_pairs(text: str) -> list[tuple[str, str]]:
    """``parse_pairs`` of a text without "%" or "+" (nothing to unescape): the same pairs
    and refusals as ``parse_qsl`` in strict mode, without its per-field unquoting."""
    if not text:
        return []
    fields = text.split("&")
    if len(fields) > MAX_FIELDS:
        raise InvalidRequest("The form is malformed.")
    pairs = []
    for field in fields:
        name, sep, value = field.partition("=")
        if not sep:  # strict parsing: every field has "=", so "a&&b=c" is malformed too
            raise InvalidRequest("The form is malformed.")
        pairs.append((name, value))
    return pairs


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """The name/value pairs of a urlencoded string; ``InvalidRequest`` if malformed."""
    if "%" not in text and "+" not in text:
        return _plain_pairs(text)  # a token request's usual form
    if _BAD_ESCAPE.search(text):
        raise InvalidRequest("The form has a malformed percent-escape.")
    try:
        return parse_qsl(
            text,
            strict_parsing=True,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise InvalidRequest("The form is not UTF-8.") from None
    except ValueError:
        raise InvalidRequest("The form is malformed.") from None


def check_pairs(
    pairs: list[tuple[str, str]],
    allowed: Collection[str] | None,
    long_values: Collection[str] = (),
) -> dict[str, str]:
    """A dict of the pairs: each name allowed (None: any), present once, not over-long."""
    form: dict[str, str] = {}
    for name, value in pairs:
        if allowed is not None and name not in allowed:
            # Parameter names are never echoed: the description stays a fixed text.
            raise InvalidRequest("The request has a parameter this endpoint does not take.")
        if name in form:
            raise InvalidRequest("A parameter is repeated (RFC 6749 section 3.1).")
        limit = MAX_TOKEN_VALUE if name in long_values else MAX_VALUE
        if len(value) > limit:
            raise InvalidRequest("A parameter value is too long.")
        form[name] = value
    return form


async def read_form(
    request: Request, allowed: Collection[str] | None, long_values: Collection[str] = ()
) -> dict[str, str]:
    """The request's form, strictly parsed (see the module docstring)."""
    check_content_type(single_header(request, "content-type"), _FORM_TYPE)
    body = await read_body(request)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("The form is not UTF-8.") from None
    return check_pairs(parse_pairs(text), allowed, long_values)


def _basic(header: str) -> tuple[str, str | None]:
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient()
    try:
        raw = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClient() from None
    user, sep, password = raw.partition(":")
    if not sep:
        raise InvalidClient()
    try:
        # RFC 6749 section 2.3.1: both parts are form-urlencoded inside Basic.
        client_id = unquote_plus(user, errors="strict")
        secret = unquote_plus(password, errors="strict")
    except UnicodeDecodeError:
        raise InvalidClient() from None
    return client_id, secret or None


def read_query(request: Request, allowed: Collection[str]) -> dict[str, str]:
    """The query string's parameters: ASCII, each at most once, only those ``allowed``."""
    raw = request.scope.get("query_string", b"")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidRequest("The query string is malformed.") from None
    return check_pairs(parse_pairs(text), allowed)


def query_number(
    params: Mapping[str, str], name: str, default: int | None, *, maximum: int | None = None
) -> int | None:
    """A non-negative integer parameter (1..``maximum`` when given), or ``default``."""
    text = params.get(name)
    if text is None:
        return default
    if not _NUMBER.fullmatch(text) or (maximum is not None and not 1 <= int(text) <= maximum):
        limit = "" if maximum is None else f" (1 to {maximum})"
        raise InvalidRequest(f"{name} must be a non-negative integer{limit}.")
    return int(text)


def client_credentials(request: Request, form: Mapping[str, str]) -> ClientCredentials:
    """The client's credentials from Basic or the body (never both); ``InvalidClient`` if none."""
    header = single_header(request, "authorization")
    in_body = AUTH_PARAMETERS & form.keys()
    if header is not None:
        if in_body:
            raise InvalidRequest("Use one client authentication method, not two.")
        client_id, secret = _basic(header)
        return ClientCredentials(client_id, secret, "client_secret_basic")
    if "client_id" not in form:
        raise InvalidClient()
    secret = form.get("client_secret")
    if secret is None:
        return ClientCredentials(form["client_id"], None, "none")
    return ClientCredentials(form["client_id"], secret or None, "client_secret_post")


def client_address(request: Request) -> str:
    """The peer address the throttle counts.

    The socket's peer, never ``X-Forwarded-For``: any client can write that header, so
    trusting it would let one attacker spread guesses over invented addresses. Behind a
    reverse proxy, the ``trusted_proxies`` setting makes ``serve`` rewrite ``client``
    from those peers' header only.
    """
    return request.client.host if request.client is not None else "unknown"
