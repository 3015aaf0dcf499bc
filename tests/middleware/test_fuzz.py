"""Property-based fuzzing of the bearer protection (Hypothesis), FastAPI and Flask alike.

Random ``Authorization`` headers (scheme in any case, odd spacing, tabs, commas, several
tokens, non-ASCII, huge, two headers), tokens live, tampered and made up, tokens in the
query string and the form body, on every route of the test apps. Each answer is held to
a model of the documented rules (docs/middleware.md, RFC 6750) written apart from the
middleware's own parsing:

- no ``Authorization`` header: no claims; a protected route is a bare ``Bearer realm``
  401, a public one answers with no subject; a token in the query or body changes nothing;
- exactly one header, ``Bearer`` in any case, one or more spaces, a token that verifies
  (trailing spaces aside): the route's own answer, 403 ``insufficient_scope`` without the
  role or scope;
- a lone header of another scheme (Basic, or none at all): as no header (RFC 6750
  section 3.1);
- any other header (a malformed ``Bearer`` one), or two: 401 ``error="invalid_token"``,
  whatever the route, even one that does not exist.

And always: never a 5xx, ``no-store`` on every refusal, neither the token nor any part of
it nor key material in a body or a header.
"""

from __future__ import annotations

import ast
import functools
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import anyio.from_thread
import anyio.to_thread
import httpx
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tokensmith.errors import TokensmithError
from tokensmith.middleware import asgi, bearer
from tokensmith.middleware import fastapi as fastapi_mw
from tokensmith.middleware import flask as flask_mw

from .helpers import (
    Keys,
    assert_bare_challenge,
    assert_forbidden,
    assert_invalid_token,
    async_verifier,
    bad_tokens,
    make_keys,
    sync_verifier,
    token,
)
from .test_fastapi import build_app as build_fastapi_app
from .test_flask import build_app as build_flask_app

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    # The explain phase reruns a failure under coverage: seconds for no new finding.
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass(frozen=True)
class Holder:
    """A token that verifies, and what its claims allow."""

    token: str
    roles: frozenset[str]
    scopes: frozenset[str]


@dataclass(frozen=True)
class World:
    keys: Keys
    valid: tuple[Holder, ...]
    bad: tuple[str, ...]

    def holder(self, value: str) -> Holder | None:
        return next((h for h in self.valid if h.token == value), None)


@functools.cache
def world() -> World:
    """Keys and tokens, made when the first example is drawn, not at import: the tokens'
    times count from now (valid for 15 minutes, "not yet valid" for 10), and a long test
    session could otherwise outlive them."""
    keys = make_keys()
    valid = (
        Holder(token(keys), frozenset({"EDITOR"}), frozenset({"read", "write"})),
        Holder(
            token(keys, roles=["ADMIN"], scope="read write api"),
            frozenset({"ADMIN"}),
            frozenset({"read", "write", "api"}),
        ),
        Holder(token(keys, roles=[], scope="read"), frozenset(), frozenset({"read"})),
    )
    return World(keys, valid, tuple(sorted(bad_tokens(keys).values())))


# The test apps' routes (tests/middleware/test_fastapi.py, test_flask.py), and what each
# demands: any one of the roles (None: no token needed), and every one of the scopes.
ROUTES: dict[tuple[str, str], tuple[frozenset[str] | None, frozenset[str]]] = {
    ("GET", "/public"): (None, frozenset()),
    ("GET", "/me"): (frozenset(), frozenset()),
    ("POST", "/create"): (frozenset({"EDITOR", "ADMIN"}), frozenset()),
    ("POST", "/delete"): (frozenset({"ADMIN"}), frozenset()),
    ("POST", "/write"): (frozenset(), frozenset({"write", "api"})),
}

# -- strategies -----------------------------------------------------------------------------

_B64URL = string.ascii_letters + string.digits + "-_"
_B64TOKEN = _B64URL + ".~+/="
# What an HTTP/1.1 parser lets through in a header value: no CR, LF, NUL or other
# controls but the tab (RFC 9110 section 5.5).
_HEADER_CHARS = (
    "\t" + "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0x80, 0x100))
)


def flip(value: str, index: int, char: str) -> str:
    """``value`` with one character replaced by another (never by itself)."""
    i = index % len(value)
    if value[i] == char:
        char = "A" if char != "A" else "B"
    return value[:i] + char + value[i + 1 :]


def segments(value: str, order: Sequence[int]) -> str:
    parts = value.split(".")
    return ".".join(parts[i % len(parts)] for i in order)


# Deferred: drawn from world(), which is made when the first test runs.
live = st.deferred(lambda: st.sampled_from([holder.token for holder in world().valid]))
bad_tokens_ = st.one_of(
    st.deferred(lambda: st.sampled_from(world().bad)),
    # Tampered: one character changed anywhere (canonical base64url: never still valid),
    # segments dropped, repeated or swapped, something appended.
    st.builds(flip, live, st.integers(0, 2000), st.sampled_from(_B64TOKEN)),
    st.builds(segments, live, st.lists(st.integers(0, 5), min_size=1, max_size=5)),
    st.builds(lambda t, s: t + s, live, st.sampled_from(["=", ".", "..", "~", "+", "/"])),
    # Made up: random segments, random b64token text, anything at all.
    st.lists(st.text(st.sampled_from(_B64URL), max_size=40), min_size=1, max_size=5).map(".".join),
    st.text(st.sampled_from(_B64TOKEN), min_size=1, max_size=60),
    st.text(st.sampled_from(_HEADER_CHARS), max_size=40),
    st.sampled_from([8193, 20_000]).map(lambda n: "A" * n),
)
tokens = live | bad_tokens_
# Each part of "Bearer <token>" as (right, wrong). Right: the scheme in any case (RFC 9110
# section 11.1), one or more spaces, trailing spaces (a server's parser strips them).
SCHEMES = (
    st.sampled_from(["Bearer", "Bearer", "bearer", "BEARER", "bEaReR"]),
    st.sampled_from(
        [
            *("Basic", "Token", "JWT", "DPoP", ""),
            # Near misses: punctuation, an accent, a Greek capital beta.
            *("Bearer:", "Bearer,", "B\u00e9arer", "Bearerx", "\u0392earer"),
        ]
    ),
)
SEPARATORS = (
    st.sampled_from([" ", " ", "  ", "   "]),
    st.sampled_from(["\t", "", " \t", ",", ": ", "=", "\u00a0"]),
)
TOKENS = (live, bad_tokens_)
TRAILERS = (
    st.sampled_from(["", "", " ", "  "]),
    st.sampled_from(["\t", ",", ", x", " extra", ";", "\u00a0", "\x00"]),
)
_PLANS = ["right"] * 6 + ["scheme", "separator", "token", "trailer"] * 2 + ["several", "raw", "all"]


@st.composite
def authorization_values(draw: st.DrawFn) -> tuple[bytes, str]:
    """One ``Authorization`` value, and the token (or what stands for one) in it.

    Mostly right, or wrong in one part only, so what the middleware must accept gets as
    many examples as what it must refuse; sometimes several tokens, or any text."""
    plan = draw(st.sampled_from(_PLANS))
    if plan == "raw":
        text = draw(st.text(st.sampled_from(_HEADER_CHARS), max_size=80))
        return text.encode("latin-1"), text.partition(" ")[2] or text
    if plan == "several":
        many = draw(st.lists(tokens, min_size=2, max_size=3))
        joint = draw(st.sampled_from([" ", ",", ", ", ";", "\t"]))
        return _header_bytes(f"{draw(SCHEMES[0])} {joint.join(many)}"), many[0]
    wrong = {"scheme", "separator", "token", "trailer"} if plan == "all" else {plan}
    scheme, separator, value, trailer = (
        draw(pair[name in wrong])
        for name, pair in (
            ("scheme", SCHEMES),
            ("separator", SEPARATORS),
            ("token", TOKENS),
            ("trailer", TRAILERS),
        )
    )
    return _header_bytes(scheme + separator + value + trailer), value


def _header_bytes(text: str) -> bytes:
    # Non-Latin-1 text goes out as its UTF-8 bytes (an app reads them back as Latin-1);
    # controls a real server would refuse are left out.
    raw = text.encode("utf-8")
    return bytes(b for b in raw if (b >= 0x20 and b != 0x7F) or b == 0x09)


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: str
    authorization: tuple[bytes, ...]
    presented: tuple[str, ...]  # the tokens in the headers, query and body
    form: str | None  # a urlencoded body, when one is sent


@st.composite
def calls(draw: st.DrawFn) -> Call:
    route = draw(
        st.sampled_from(sorted(ROUTES))
        | st.sampled_from([("GET", "/nowhere"), ("DELETE", "/me"), ("PUT", "/create")])
    )
    method, path = route
    count = draw(st.sampled_from([0, 1, 1, 1, 1, 1, 2]))
    headers = [draw(authorization_values()) for _ in range(count)]
    presented = [value for _, value in headers]
    query = ""
    form = None
    # RFC 6750 sections 2.2 and 2.3: a token there is never read.
    if draw(st.integers(0, 3)) == 0:
        in_query = draw(tokens)
        query = "?access_token=" + quote(in_query, safe="")
        presented.append(in_query)
    if method == "POST" and draw(st.integers(0, 3)) == 0:
        in_body = draw(tokens)
        form = "access_token=" + quote(in_body, safe="")
        presented.append(in_body)
    return Call(method, path, query, tuple(raw for raw, _ in headers), tuple(presented), form)


# -- the model ------------------------------------------------------------------------------


def verified_holder(authorization: tuple[bytes, ...]) -> Holder | None:
    """The holder a lone ``Bearer`` header names: RFC 6750 section 2.1's ``Bearer``, any
    case (RFC 9110 section 11.1), one or more spaces, the token; spaces and tabs around
    the value are what a server's parser strips anyway."""
    if len(authorization) != 1:
        return None
    text = authorization[0].decode("latin-1").strip(" \t")
    match = re.fullmatch(r"(?i:bearer) +([^ ]+)", text, flags=re.ASCII)
    return None if match is None else world().holder(match[1])


def another_scheme(authorization: tuple[bytes, ...]) -> bool:
    """A lone header whose scheme is not Bearer: no credentials (RFC 6750 section 3.1).

    The scheme is the run of token characters (RFC 9110 section 5.6.2) the value starts
    with: "Bearerx abc" is another scheme, "Bearer:abc" a malformed Bearer."""
    if len(authorization) != 1:
        return False
    text = authorization[0].decode("latin-1").strip(" \t")
    scheme = re.match(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]*", text)
    return scheme is None or scheme[0].lower() != "bearer"


def may_pass(holder: Holder, route: tuple[str, str]) -> bool:
    roles, scopes = ROUTES[route]
    return (not roles or bool(roles & holder.roles)) and scopes <= holder.scopes


@functools.cache
def fixed_text() -> str:
    """Every string literal of the middleware and every error's fixed description.

    Hypothesis draws text from the code under test's own literals, so a drawn value can
    be a piece of the answer's fixed words ("error_descriptio" against a body naming
    error_description): a piece of these is no echo of what the client sent."""
    words = [cls.description for cls in _subclasses(TokensmithError)]
    for module in (bearer, asgi, fastapi_mw, flask_mw):
        tree = ast.parse(Path(module.__file__ or "").read_text(encoding="utf-8"))
        words += [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    return "\n".join(w for w in words if isinstance(w, str))


def _subclasses(cls: type) -> list[type]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _subclasses(child))]


def secrets_in(call: Call) -> list[str]:
    """What no answer may contain: each token presented, its long parts, the key members.

    Short strings are left out: "Bearer x" echoing "x" somewhere is no finding, and a
    random 16-character token cannot turn up in an answer by chance; nor is a piece of
    the answers' own fixed text (``fixed_text``)."""
    found = list(world().keys.material())
    vocabulary = fixed_text()
    for value in call.presented:
        parts = (value, *value.split("."))
        found += [part for part in parts if len(part) >= 16 and part not in vocabulary]
    return found


def check(
    call: Call,
    status: int,
    headers: Any,
    body: Any,
    text: str,
) -> None:
    """The answer the model predicts, and the promises every answer keeps."""
    assert status < 500, text
    secrets = secrets_in(call)
    answer = text + "\n" + "\n".join(f"{k}: {v}" for k, v in headers.items())
    assert not [s for s in secrets if s in answer], "an answer echoes a token or key"
    route = (call.method, call.path)
    if call.authorization and not another_scheme(call.authorization):
        holder = verified_holder(call.authorization)
        if holder is None:
            # A credential that failed: refused whatever the route, even an unknown one.
            assert_invalid_token(status, headers, body, text, secrets)
            return
    else:
        holder = None
    if route not in ROUTES:
        assert status in (404, 405), (status, text)
        return
    roles, _ = ROUTES[route]
    if holder is None:
        if roles is None:
            assert status == 200, text
            assert body["sub"] is None
        else:
            assert_bare_challenge(status, headers, body)
        return
    if may_pass(holder, route):
        assert status == 200, text
        assert body.get("sub", body.get("by", "user-42")) == "user-42"
    else:
        assert_forbidden(status, headers, body, text, secrets)


# -- the apps -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flask_http() -> FlaskClient:
    app = build_flask_app(sync_verifier(world().keys))
    app.testing = False  # an error becomes a 500 answer, as in production
    return app.test_client()


def _form_headers(call: Call) -> list[tuple[bytes, bytes]]:
    headers = [(b"Authorization", value) for value in call.authorization]
    if call.form is not None:
        headers.append((b"Content-Type", b"application/x-www-form-urlencoded"))
    return headers


async def _send(http: httpx.AsyncClient, call: Call) -> httpx.Response:
    return await http.request(
        call.method,
        call.path + call.query,
        headers=_form_headers(call),
        content=None if call.form is None else call.form.encode(),
    )


@pytest.mark.anyio
async def test_fastapi() -> None:
    app = build_fastapi_app(async_verifier(world().keys))
    # raise_app_exceptions=False: an error becomes the 500 a real server would send.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as http:
        # Hypothesis drives from a worker thread; each request runs on this event loop.
        @FUZZ
        @given(calls())
        def one(call: Call) -> None:
            response = anyio.from_thread.run(_send, http, call)
            body = response.json() if response.content else None
            check(call, response.status_code, response.headers, body, response.text)

        await anyio.to_thread.run_sync(one)


@FUZZ
@given(calls())
def test_flask(flask_http: FlaskClient, call: Call) -> None:
    # WSGI hands header values over as Latin-1 text; werkzeug joins two headers with ", ".
    headers = [(name.decode(), value.decode("latin-1")) for name, value in _form_headers(call)]
    response = flask_http.open(
        call.path + call.query,
        method=call.method,
        headers=headers,
        data=call.form,
    )
    body = response.get_json(silent=True)
    # The app sees one header whatever was sent: the model judges what it sees.
    seen = replace(call, authorization=(b", ".join(call.authorization),))
    check(
        seen if len(call.authorization) > 1 else call,
        response.status_code,
        response.headers,
        body,
        response.get_data(as_text=True),
    )
