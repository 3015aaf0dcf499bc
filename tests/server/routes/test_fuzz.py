"""Property-based fuzzing of the token server's HTTP surface (Hypothesis).

Hostile requests to the OAuth endpoints and a few admin routes, against the real app
over a real SQLite file (``running``). Every answer must keep the promises of the
token server issue: never a 5xx, every 4xx a JSON error with its stable ``code``, every
401 a challenge, every answer ``no-store``, and no credential the request carried (nor
the server's own secrets) echoed in a body, a header or a log line.

One app lifespan per test: Hypothesis runs in a worker thread (``anyio.to_thread``) and
each example sends its request on the event loop through ``anyio.from_thread``, because
starting the app (migrations, key ring) per example would cost most of the time budget.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import re
import string
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import anyio
import anyio.from_thread
import anyio.to_thread
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tokensmith.server.forms import MAX_BODY, MAX_TOKEN_VALUE, MAX_VALUE

from .admin_helpers import ADMIN_PASSWORD, make_admin
from .conftest import FORM, Server, basic, running

pytestmark = pytest.mark.anyio

# Distinctive, so a substring check on an answer or a log means an echo, not a chance hit.
USER_PASSWORD = "Fuzz-User-Passw0rd-q7Zr4-Vx"
# Every credential the fuzzer makes up starts with this: any echo of one is a finding.
MARK = "zQx9Secret"
# Failures never lock anything here: with the fixed clock, the throttle would otherwise
# answer 429 to every request after the first few wrong secrets and hide the code behind it.
NO_LOCKOUT: dict[str, Any] = {
    "login_free_failures": 999,
    "login_lock_threshold": 1000,
    "login_ip_threshold": 1_000_000,
}

_BASE = settings(
    deadline=None,
    derandomize=True,
    database=None,
    # The explain phase reruns a failure under coverage: seconds for no new finding.
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz_settings(max_examples: int) -> settings:
    return settings(_BASE, max_examples=max_examples)


# -- what the server holds and what the requests carry ------------------------------------


@dataclass(frozen=True)
class Known:
    """The server's live credentials, for building near-valid requests and echo checks."""

    client_secret: str
    access_token: str
    refresh_token: str
    admin_token: str

    def secrets(self) -> tuple[str, ...]:
        return (
            self.client_secret,
            self.access_token,
            self.refresh_token,
            self.admin_token,
            USER_PASSWORD,
            ADMIN_PASSWORD,
        )


@dataclass(frozen=True)
class Probe:
    """One hostile request, and the credentials in it that no answer may contain."""

    method: str
    url: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    body: bytes = b""
    chunked: bool = False
    carried: tuple[str, ...] = ()


async def _send(http: httpx.AsyncClient, probe: Probe) -> httpx.Response:
    content: bytes | AsyncIterator[bytes] = probe.body
    if probe.chunked:
        # No Content-Length: the server must bound the body while reading it.
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(probe.body), 4096):
                yield probe.body[start : start + 4096]

        content = chunks()
    return await http.request(probe.method, probe.url, headers=list(probe.headers), content=content)


def check_answer(probe: Probe, response: httpx.Response, secrets: tuple[str, ...]) -> None:
    """The promises every answer keeps, whatever the request."""
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:500]}"
    assert "Traceback" not in response.text
    # Documented: token, introspection, error and admin answers are never cached.
    assert "no-store" in response.headers.get("cache-control", ""), dict(response.headers)
    if status == 401:
        # The OAuth endpoints authenticate clients (Basic); the admin API, bearer tokens.
        challenge = response.headers.get("www-authenticate", "")
        scheme = "Bearer" if probe.url.startswith("/admin") else "Basic"
        assert challenge.startswith(f'{scheme} realm="tokensmith"'), challenge
    if status == 429:
        assert int(response.headers["retry-after"]) >= 1
    if status >= 400 and probe.method != "HEAD":
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert isinstance(body, dict)
        assert isinstance(body.get("error"), str) and body["error"]
        # Documented exception: routing's 404 and 405 are a bare {"error": ...}.
        if status not in (404, 405):
            assert isinstance(body.get("error_description"), str), body
            assert isinstance(body.get("code"), str) and body["code"], body
    elif response.content and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        response.json()  # whatever it says, it parses
    answer = response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
    for secret in (*secrets, *probe.carried):
        assert secret not in answer, "the answer echoes a credential"


def check_logs(caplog: pytest.LogCaptureFixture, secrets: tuple[str, ...]) -> None:
    """Nothing reached the 500 handler, and no credential reached a log line."""
    # The test's own HTTP client logs every URL it requests, query string included.
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    unhandled = [r for r in server_side if r.levelno >= logging.ERROR]
    assert not unhandled, [r.getMessage() for r in unhandled]
    formatter = logging.Formatter()
    logged = "\n".join(formatter.format(r) for r in server_side)  # tracebacks included
    assert logged, "no log captured: the check would be vacuous"
    for secret in secrets:
        assert secret not in logged, "a credential reached a log"


Check = Callable[[Probe, httpx.Response], None]


async def run_probes(
    server: Server,
    strategy: st.SearchStrategy[Probe],
    secrets: tuple[str, ...],
    max_examples: int,
    also: Check | None = None,
) -> tuple[list[int], tuple[str, ...]]:
    """Send every example ``strategy`` draws and check each answer.

    Returns the statuses seen (so a test can show the fuzzer got past the parser) and
    every credential the requests carried (for the log check once the lifespan is over).
    """
    statuses: list[int] = []
    carried: set[str] = set()

    @fuzz_settings(max_examples)
    @given(strategy)
    def probe_once(probe: Probe) -> None:
        response = anyio.from_thread.run(_send, server.http, probe)
        statuses.append(response.status_code)
        carried.update(probe.carried)
        check_answer(probe, response, secrets)
        if also is not None:
            also(probe, response)

    await anyio.to_thread.run_sync(probe_once)
    return statuses, (*secrets, *sorted(carried))


async def prepare(server: Server) -> Known:
    """A user, a confidential and a public client, live tokens, and an admin."""
    await server.add_user("alice", USER_PASSWORD)
    web = await server.add_client(
        "web", grant_types=("password", "refresh_token", "client_credentials")
    )
    await server.add_client("spa", confidential=False)
    assert web.secret is not None
    form = {"grant_type": "password", "username": "alice", "password": USER_PASSWORD}
    response = await server.http.post("/oauth/token", data=form, headers=basic("web", web.secret))
    assert response.status_code == 200, response.text
    tokens = response.json()
    admin = await make_admin(server)
    return Known(web.secret, tokens["access_token"], tokens["refresh_token"], admin.token)


# -- building blocks ------------------------------------------------------------------------

_B64TOKEN = string.ascii_letters + string.digits + "-._~+/"
_B64URL = string.ascii_letters + string.digits + "-_"
# What an HTTP/1.1 parser lets through in a header value (RFC 9110 field-vchar, SP,
# HTAB, obs-text); CR, LF, NUL and other controls never reach an app over a real socket.
_HEADER_CHARS = (
    "\t" + "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0x80, 0x100))
)
header_values = st.text(st.sampled_from(_HEADER_CHARS), max_size=60).map(
    lambda s: s.encode("latin-1")
)
# Text Hypothesis would seldom pick by itself: non-ASCII, invisible, form syntax, huge.
nasty_text = st.sampled_from(
    ["é", "\u202e", "\x00", "\U0001d518", "\ufeff", "a b", "%", "+", "&", "=", "%00", "x" * 5000]
)
wild_text = st.one_of(st.text(st.characters(codec="utf-8"), max_size=40), nasty_text)
marked_secrets = st.text(st.sampled_from(_B64TOKEN), min_size=6, max_size=30).map(
    lambda s: f"{MARK}{s}"
)
segments = st.text(st.sampled_from(_B64URL), min_size=8, max_size=60)
jwt_like = st.builds(lambda a, b, c: f"{MARK}{a}.{b}.{c}", segments, segments, segments)


def flip_signature(token: str, index: int, char: str) -> str:
    """``token`` with one character of its signature changed (so never a prefix of it)."""
    head, _, signature = token.rpartition(".")
    i = index % len(signature)
    replacement = char if signature[i] != char else ("A" if char != "A" else "B")
    return f"{head}.{signature[:i]}{replacement}{signature[i + 1 :]}"


def token_values(known: Known) -> st.SearchStrategy[str]:
    """Tokens to present: live, tampered, made up, empty, over-long."""
    live = st.sampled_from([known.access_token, known.refresh_token, known.admin_token])
    return st.one_of(
        live,
        st.builds(flip_signature, live, st.integers(0, 200), st.sampled_from(_B64URL)),
        jwt_like,
        marked_secrets,
        st.sampled_from(["", " ", ".", "..", "a.b.c", "null", "%00", "eyJ", "Bearer x"]),
        wild_text,
        st.sampled_from([MAX_TOKEN_VALUE, MAX_TOKEN_VALUE + 1, MAX_VALUE + 1]).map(
            lambda n: MARK + "A" * (n - len(MARK))
        ),
    )


def basic_header(user: str, secret: str) -> bytes:
    raw = f"{quote_plus(user)}:{quote_plus(secret)}".encode()
    return b"Basic " + base64.b64encode(raw)


_CARRIED = re.compile(re.escape(MARK) + r"[A-Za-z0-9\-_~+/]+")


def _marked(text: str) -> list[str]:
    return _CARRIED.findall(text)


def _carried_in_authorization(values: tuple[bytes, ...]) -> tuple[str, ...]:
    """The made-up credentials in Authorization values, as the server would decode them."""
    found: list[str] = []
    for value in values:
        text = value.decode("latin-1")
        found += _marked(text)
        try:
            inner = base64.b64decode(text.partition(" ")[2].strip(), validate=True)
        except ValueError:
            continue
        decoded = inner.decode("utf-8", "replace")
        found += _marked(decoded) + _marked(unquote_plus(decoded))
    return tuple(found)


# -- request parts: each as (a good strategy, a hostile one) -------------------------------

good_form_type = st.sampled_from(
    [FORM, FORM + "; charset=UTF-8", FORM + "; charset=utf8", FORM + '; charset="utf-8"']
).map(str.encode)
hostile_form_type = st.one_of(
    st.sampled_from(
        [
            None,
            FORM + "; charset=latin-1",
            FORM + ";charset=UTF-8;",
            FORM + "; charset",
            FORM + "; boundary=x",
            FORM.upper(),
            " " + FORM + " ",
            FORM + "\t",
            "application/json",
            "multipart/form-data; boundary=x",
            "text/plain",
            "",
            ";",
        ]
    ).map(lambda v: None if v is None else v.encode("latin-1")),
    header_values,
)

# How a field is written: right, or in one of the ways a client gets it wrong.
STYLES = ("raw", "latin1", "bare", "broken-escape", "bytes")


def encode_pair(name: str, value: str, style: str, junk: bytes) -> bytes:
    if style == "quoted":
        return f"{quote_plus(name)}={quote_plus(value)}".encode()
    if style == "raw":  # unescaped: "&", "=", "%" and "+" in the value change the form
        return f"{name}={value}".encode("utf-8", "surrogatepass")
    if style == "latin1":  # %-escapes of latin-1 bytes: not UTF-8 once decoded
        escaped = quote_plus(value, encoding="latin-1", errors="replace")
        return f"{quote_plus(name)}={escaped}".encode()
    if style == "bare":  # a field without "="
        return quote_plus(name).encode()
    if style == "broken-escape":
        return f"{quote_plus(name)}={quote_plus(value)}%{value[:1]}".encode(
            "utf-8", "surrogatepass"
        )
    return quote_plus(name).encode() + b"=" + junk  # raw bytes, UTF-8 or not


Form = list[tuple[str, str]]
Body = tuple[bytes, tuple[str, ...]]  # the bytes, and the made-up credentials in them


def good_forms(templates: list[Form]) -> st.SearchStrategy[Body]:
    def encode(pairs: Form) -> Body:
        return b"&".join(encode_pair(n, v, "quoted", b"") for n, v in pairs), ()

    return st.sampled_from(templates).map(encode)


@st.composite
def hostile_forms(
    draw: st.DrawFn, templates: list[Form], names: list[str], values: st.SearchStrategy[str]
) -> Body:
    """A template form with one thing wrong, mostly: a field added, dropped, repeated,
    renamed, emptied or given an odd value, one field written wrongly, the framing
    broken, too many fields; sometimes several of these at once; or just bytes."""
    plan = draw(
        st.sampled_from(
            ["value"] * 6
            + ["blank", "drop", "drop", "add", "dup", "rename"]
            + ["encoding", "framing", "many", "bytes", "several"]
        )
    )
    if plan == "bytes":
        return draw(st.binary(max_size=200)), ()
    pairs = list(draw(st.sampled_from(templates)))
    edits = ["add", "drop", "dup", "value", "blank", "rename"]
    ops = [plan] if plan in edits else []
    if plan == "several":
        ops = draw(st.lists(st.sampled_from(edits), min_size=2, max_size=4))
    for op in ops:
        i = draw(st.integers(0, max(0, len(pairs) - 1)))
        if op == "add" or not pairs:
            pairs.insert(i, (draw(st.sampled_from(names) | wild_text), draw(values)))
        elif op == "drop":
            pairs.pop(i)
        elif op == "dup":
            pairs.append(pairs[i])
        elif op == "value":
            pairs[i] = (pairs[i][0], draw(values))
        elif op == "blank":
            pairs[i] = (pairs[i][0], "")
        else:
            pairs[i] = (draw(st.sampled_from(names) | wild_text), pairs[i][1])
    if plan in ("many", "several") and draw(st.booleans()):  # around MAX_FIELDS
        pairs += [(f"x{i}", "1") for i in range(draw(st.sampled_from([45, 49, 50, 200])))]
    styles = ["quoted"] * len(pairs)
    if plan == "encoding" and pairs:
        styles[draw(st.integers(0, len(pairs) - 1))] = draw(st.sampled_from(STYLES))
    elif plan == "several":
        styles = [draw(st.sampled_from(["quoted", "quoted", *STYLES])) for _ in pairs]
    fields = [
        encode_pair(n, v, style, draw(st.binary(max_size=8)))
        for (n, v), style in zip(pairs, styles, strict=True)
    ]
    separator, prefix, suffix = b"&", b"", b""
    if plan in ("framing", "several"):
        separator = draw(st.sampled_from([b"&", b"&&", b";", b"&amp;"]))
        prefix = draw(st.sampled_from([b"", b"&", b"?", b"\xef\xbb\xbf"]))
        suffix = draw(st.sampled_from([b"", b"&", b"=", b"%", b"\x00"]))
    body = prefix + separator.join(fields) + suffix
    return body, tuple(v for _, v in pairs if v.startswith(MARK))


def query_strings() -> st.SearchStrategy[str]:
    """A query string: parameters, percent-encoding edge cases, credentials put there."""
    params = st.lists(
        st.tuples(
            st.sampled_from(["after", "limit", "before", "since", "access_token", "password"])
            | wild_text,
            st.sampled_from(["0", "1", "-1", "9" * 19, "1e3", "0x10", "١٢", "", "%FF", "%zz", "%"])
            | wild_text
            | marked_secrets,
        ),
        min_size=1,
        max_size=4,
    )

    def render(pairs: list[tuple[str, str]], raw: bool) -> str:
        if raw:  # httpx keeps "%" escapes (broken ones too) and escapes non-ASCII itself
            text = "&".join(f"{n}={v}" for n, v in pairs)
            return "?" + "".join(c for c in text if c.isprintable() and c != "#")
        return "?" + "&".join(f"{quote(n)}={quote(v)}" for n, v in pairs)

    return st.builds(render, params, st.booleans())


# Another method than the route's, including ones no route knows.
other_methods = st.sampled_from(
    ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "FOO", "M-SEARCH"]
)

Part = tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]  # (good, hostile)


@st.composite
def probes(
    draw: st.DrawFn,
    *,
    method: str,
    path: Part,
    content_type: Part,
    authorization: Part,
    body: Part,
    query: st.SearchStrategy[str] | None = None,
    may_break: frozenset[str] | None = None,
) -> Probe:
    """A request whose parts are each good or hostile (which ones is drawn first, among
    ``may_break``, default all)."""
    # A wrong method or path meets only the router: even drawn hostile, mostly still right.
    parts = {
        "method": (st.just(method), st.just(method) | st.just(method) | other_methods),
        "path": (path[0], path[0] | path[0] | path[1]),
        "query": (st.just(""), query_strings() if query is None else query),
        "content_type": content_type,
        "authorization": authorization,
        "body": body,
    }
    # Mostly one part wrong, so the rest of the request carries it deep into the server;
    # sometimes none (the request must work), sometimes several. The body, where the
    # endpoint's own parsing and logic are, is the one most often wrong.
    breakable = sorted(parts if may_break is None else may_break)
    hostile: set[str] = set()
    if breakable:
        count = draw(st.sampled_from([0, 1, 1, 1, 1, 1, 2, 2, 3, len(parts)]))
        weighted = breakable + ["body"] * 5 if "body" in breakable else breakable
        hostile = set(draw(st.lists(st.sampled_from(weighted), min_size=count, max_size=count)))
    drawn = {name: draw(pair[name in hostile]) for name, pair in parts.items()}
    auth: tuple[bytes, ...] = drawn["authorization"]
    headers = [(b"Authorization", value) for value in auth]
    if drawn["content_type"] is not None:
        headers.append((b"Content-Type", drawn["content_type"]))
    content, carried = drawn["body"]
    carried += _carried_in_authorization(auth) + tuple(_marked(unquote(drawn["query"])))
    return Probe(
        drawn["method"], drawn["path"] + drawn["query"], tuple(headers), content, carried=carried
    )


def hostile_client_auth(known: Known) -> st.SearchStrategy[tuple[bytes, ...]]:
    """Authorization headers (none, one or two) that should not authenticate the client."""
    one = st.one_of(
        st.builds(
            basic_header,
            st.sampled_from(["web", "spa", "nobody", ""]) | wild_text,
            marked_secrets,
        ),
        # Any bytes behind valid base64: no colon, non-UTF-8, bad %-escapes, NULs.
        st.binary(max_size=80).map(lambda b: b"Basic " + base64.b64encode(b)),
        # Not base64 at all, or base64 with stray characters and whitespace.
        st.builds(
            lambda s, v: s + v, st.sampled_from([b"Basic ", b"basic ", b"BASIC  "]), header_values
        ),
        st.builds(
            lambda scheme, v: scheme + v,
            st.sampled_from(
                [b"Basic", b"Basic\t", b"Bearer ", b"Digest ", b"Negotiate ", b"", b" ", b"Basic:"]
            ),
            header_values,
        ),
        st.builds(lambda t: b"Bearer " + t.encode("latin-1", "replace"), token_values(known)),
        # Huge: a valid-looking Basic of a long id and secret, and raw junk.
        st.integers(1_000, 20_000).map(lambda n: b"Basic " + base64.b64encode(b"web:" + b"s" * n)),
        st.integers(1_000, 20_000).map(lambda n: b"Basic " + b"A" * n),
    )
    good = basic_header("web", known.client_secret)
    return st.one_of(st.tuples(one), st.tuples(one, one), st.tuples(st.just(good), one))


def client_auth(known: Known) -> Part:
    good = basic_header("web", known.client_secret)
    return st.sampled_from([(good,), (good,), ()]), hostile_client_auth(known)


def form_body(templates: list[Form], names: list[str], values: st.SearchStrategy[str]) -> Part:
    return good_forms(templates), hostile_forms(templates, names, values)


@st.composite
def focused_forms(
    draw: st.DrawFn, templates: list[Form], field: str, values: st.SearchStrategy[str]
) -> Body:
    """A good form, but for an odd value of ``field``: one parameter at a time gets
    every example's attention, so none is left to chance."""
    takes_it = [t for t in templates if any(name == field for name, _ in t)]
    pairs = list(draw(st.sampled_from(takes_it or templates)))
    value = draw(values)
    if takes_it:
        pairs = [(name, value if name == field else v) for name, v in pairs]
    else:
        pairs.append((field, value))
    body = b"&".join(encode_pair(n, v, "quoted", b"") for n, v in pairs)
    return body, tuple(v for _, v in pairs if v.startswith(MARK))


def form_probes(
    known: Known,
    path: str,
    templates: list[Form],
    names: list[str],
    values: st.SearchStrategy[str],
    focus: str | None = None,
) -> st.SearchStrategy[Probe]:
    """Requests to a form endpoint: any part hostile, or (``focus``) only that field."""
    if focus is not None:
        body = focused_forms(templates, focus, values)
        return probes(
            method="POST",
            path=paths(path),
            content_type=FORM_TYPE,
            authorization=client_auth(known),
            body=(body, body),
            may_break=frozenset(),
        )
    return probes(
        method="POST",
        path=paths(path, path + "%00", path + ";x", path + "s"),
        content_type=FORM_TYPE,
        authorization=client_auth(known),
        body=form_body(templates, names, values),
    )


def paths(good: str, *variants: str) -> Part:
    hostile = st.sampled_from([good + "/", good.upper(), good.replace("/", "//"), *variants])
    return st.just(good), hostile


FORM_TYPE: Part = (good_form_type, hostile_form_type)


# -- the tests ------------------------------------------------------------------------------


async def test_token_endpoint(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith")
    async with running(tmp_path, **NO_LOCKOUT) as server:
        known = await prepare(server)
        secrets = known.secrets()
        templates: list[Form] = [
            [("grant_type", "password"), ("username", "alice"), ("password", USER_PASSWORD)],
            [
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", USER_PASSWORD),
                ("scope", "read"),
            ],
            [("grant_type", "refresh_token"), ("refresh_token", known.refresh_token)],
            [("grant_type", "client_credentials"), ("scope", "read write")],
            [
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", USER_PASSWORD),
                ("client_id", "web"),
                ("client_secret", known.client_secret),
            ],
            [
                ("grant_type", "password"),
                ("username", "root"),
                ("password", ADMIN_PASSWORD),
                ("client_id", "spa"),
            ],
            [("grant_type", "authorization_code"), ("code", "x"), ("redirect_uri", "https://x")],
        ]
        names = [
            "grant_type",
            "username",
            "password",
            "scope",
            "refresh_token",
            "client_id",
            "client_secret",
            "code",
            "token",
            "",
            "grant_type ",
            "GRANT_TYPE",
            "scope[]",
        ]
        values = st.one_of(
            st.sampled_from(
                [
                    "password",
                    "refresh_token",
                    "client_credentials",
                    "alice",
                    "web",
                    "spa",
                    "read",
                    "read write",
                    "admin",
                    "",
                    " ",
                    "\x00",
                ]
            ),
            token_values(known),
            marked_secrets,
            wild_text,
            nasty_text,
            st.sampled_from([MAX_VALUE, MAX_VALUE + 1]).map(lambda n: "r" * n),
        )
        statuses, carried = await run_probes(
            server, form_probes(known, "/oauth/token", templates, names, values), secrets, 150
        )
        for field in names[:7]:
            strategy = form_probes(known, "/oauth/token", templates, names, values, field)
            seen, also_carried = await run_probes(server, strategy, secrets, 20)
            statuses += seen
            carried += also_carried
    check_logs(caplog, carried)
    # Not all refused at the door: some requests got far enough to succeed.
    assert {200, 400, 401} <= set(statuses), sorted(set(statuses))


async def test_revoke_and_introspect(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith")
    async with running(tmp_path, **NO_LOCKOUT) as server:
        known = await prepare(server)
        secrets = known.secrets()
        templates: list[Form] = [
            [("token", known.access_token)],
            [("token", known.refresh_token), ("token_type_hint", "refresh_token")],
            [("token", known.admin_token), ("token_type_hint", "access_token")],
            [("token", "unknown-token")],
            [
                ("token", known.access_token),
                ("client_id", "web"),
                ("client_secret", known.client_secret),
            ],
        ]
        names = ["token", "token_type_hint", "client_id", "client_secret", "grant_type", "TOKEN"]
        values = st.one_of(
            token_values(known),
            st.sampled_from(["access_token", "refresh_token", "id_token", "web", "spa", ""]),
            marked_secrets,
            wild_text,
            nasty_text,
        )
        carried: tuple[str, ...] = ()
        for path in ("/oauth/introspect", "/oauth/revoke"):
            strategy = form_probes(known, path, templates, names, values)
            statuses, also_carried = await run_probes(server, strategy, secrets, 80)
            carried += also_carried
            for field in names[:4]:
                strategy = form_probes(known, path, templates, names, values, field)
                seen, also_carried = await run_probes(server, strategy, secrets, 20)
                statuses += seen
                carried += also_carried
            assert {200, 400, 401} <= set(statuses), (path, sorted(set(statuses)))
    check_logs(caplog, carried)


async def test_revocation_feed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith")
    async with running(tmp_path, **NO_LOCKOUT) as server:
        known = await prepare(server)
        # Something in the feed, so its answers are not all empty.
        revoked = await server.http.post(
            "/oauth/revoke",
            data={"token": known.access_token},
            headers=basic("web", known.client_secret),
        )
        assert revoked.status_code == 200
        good_query = st.sampled_from(["", "?after=0", "?after=1&limit=1", "?limit=1000"])
        strategy = probes(
            method="GET",
            path=paths("/oauth/revocations"),
            query=good_query | query_strings(),
            content_type=(st.none(), hostile_form_type),
            authorization=client_auth(known),
            body=(st.just((b"", ())), st.binary(max_size=100).map(lambda b: (b, ()))),
        )
        statuses, carried = await run_probes(server, strategy, known.secrets(), 150)
    check_logs(caplog, carried)
    assert {200, 400, 401} <= set(statuses), sorted(set(statuses))


# -- the admin API: JSON bodies -------------------------------------------------------------

# Lone surrogates (JSON "\ud800" escapes make them) are rare in text(): asked for by name.
json_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=20),
    st.sampled_from(["\ud800", "a\udfffb", "\udc00x" * 3, "\x00", "\u202e", "", "x" * 300]),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    json_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(json_text, inner, max_size=3),
    max_leaves=8,
)
text_lists = st.lists(json_text, max_size=3)
_fresh = itertools.count()
# A name no one has yet: a create gets past "taken" to the checks of its other members.
fresh_names = st.builds(lambda: f"user{next(_fresh)}")
hostile_names = st.one_of(
    st.sampled_from(
        ["bob", "alice", "Bob", "BOB", "\uff42\uff4f\uff42", "b\u0307", " bob", "", "1234"]
    ),
    json_text,
)
# Each member's hostile values: mostly of the right type (so they pass the type checks
# and reach the services and the store), sometimes any JSON at all.
MEMBERS: dict[str, st.SearchStrategy[Any]] = {
    "username": hostile_names,
    "client_id": hostile_names,
    "password": st.one_of(marked_secrets, st.just(MARK + "-lone-\ud800")),
    "roles": text_lists,
    "profile": st.dictionaries(st.sampled_from(["name", "email"]) | json_text, json_text),
    "grant_types": text_lists,
    "scopes": text_lists,
    "audiences": text_lists,
    "public": st.booleans(),
    # Mostly the edges of the integer columns (32 and 64 bits) and just past them.
    "access_token_lifetime": st.one_of(
        st.sampled_from([2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64, 10**30]),
        st.sampled_from([0, -1, 1, 2**70]),
        st.integers(min_value=-(2**70), max_value=2**70),
    ),
    "alg": json_text | st.sampled_from(["ES256", "RS256", "HS256", "none", "EdDSA"]),
    "force": st.booleans(),
    "unknown": json_values,
}


def admin_templates() -> dict[tuple[str, str], st.SearchStrategy[dict[str, Any]]]:
    """A good JSON body per admin operation (the new user's name and password drawn)."""
    return {
        ("POST", "/admin/users"): st.fixed_dictionaries(
            {
                "username": fresh_names,
                "password": marked_secrets,
                "roles": st.just(["EDITOR"]),
                "profile": st.just({"name": "Bob"}),
            },
        ),
        ("PUT", "/admin/users/{name}/roles"): st.just({"roles": ["EDITOR", "ADMIN"]}),
        ("PUT", "/admin/users/{name}/password"): st.fixed_dictionaries(
            {"password": marked_secrets}
        ),
        ("POST", "/admin/clients"): st.fixed_dictionaries(
            {
                "client_id": fresh_names,
                "grant_types": st.just(["client_credentials"]),
                "scopes": st.just(["read"]),
                "audiences": st.just(["https://api.example.test"]),
                "access_token_lifetime": st.just(300),
            },
        ),
        ("POST", "/admin/keys/rotate"): st.sampled_from([{}, {"alg": "ES256"}]),
        ("GET", "/admin/users"): st.just({}),
        ("GET", "/admin/audit"): st.just({}),
        ("GET", "/admin/users/{name}"): st.just({}),
        ("GET", "/admin/clients/{name}"): st.just({}),
    }


def _json(value: Any, ascii_only: bool) -> bytes:
    # ensure_ascii writes a lone surrogate as a "\ud800" escape; without it, the raw code
    # point goes out as bytes that are not UTF-8 at all.
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def _carried_in_json(value: Any) -> tuple[str, ...]:
    if isinstance(value, dict):
        return tuple(v for v in value.values() if isinstance(v, str) and v.startswith(MARK))
    return ()


@st.composite
def hostile_json(draw: st.DrawFn, template: st.SearchStrategy[dict[str, Any]]) -> Body:
    """The operation's body with members added, dropped or given odd values; other JSON;
    or text that is not JSON at all."""
    kind = draw(st.sampled_from(["mutated"] * 8 + ["value", "raw", "deep"]))
    if kind == "raw":
        raw = draw(
            st.sampled_from(
                [
                    b"",
                    b"{",
                    b"{}",
                    b'{"a":1,"a":2}',
                    b"[NaN]",
                    b'{"password": Infinity}',
                    b"\xff\xfe{}",
                    b'"\\ud800"',
                    b'{"username": "\\udc00x", "password": "\\ud83d"}',
                    b"\xef\xbb\xbf{}",
                    b"{}{}",
                    b"{} x",
                ]
            )
        )
        return raw, ()
    if kind == "deep":
        depth = draw(st.sampled_from([100, 1000, 30_000]))
        return b"[" * depth + b"]" * depth, ()
    if kind == "value":
        value = draw(json_values)
        return _json(value, draw(st.booleans())), ()
    body = dict(draw(template))
    # Mostly one odd value in a member the operation takes: that gets furthest.
    plan = draw(st.sampled_from(["value"] * 8 + ["add", "drop", "several"]))
    ops = (
        [plan]
        if plan != "several"
        else draw(st.lists(st.sampled_from(["add", "drop", "value"]), min_size=2, max_size=3))
    )
    for op in ops:
        name = draw(st.sampled_from(sorted(body if body and op != "add" else MEMBERS)))
        if op == "drop":
            body.pop(name, None)
        else:
            body[name] = draw(MEMBERS.get(name, json_values))
    # Mostly ASCII with escapes: raw, a lone surrogate is bytes that are not UTF-8 at all.
    ascii_only = draw(st.sampled_from([True, True, True, False]))
    return _json(body, ascii_only), _carried_in_json(body)


@st.composite
def focused_json(draw: st.DrawFn, template: st.SearchStrategy[dict[str, Any]], member: str) -> Body:
    """The operation's good body but for an odd value of ``member``."""
    body = {**draw(template), member: draw(MEMBERS.get(member, json_values))}
    ascii_only = draw(st.sampled_from([True, True, True, False]))
    return _json(body, ascii_only), _carried_in_json(body)


def admin_auth(known: Known) -> Part:
    admin = b"Bearer " + known.admin_token.encode()
    hostile_one = st.one_of(
        st.just(b"bearer " + known.admin_token.encode()),  # RFC 9110: the scheme is any case
        st.just(b"Bearer  " + known.admin_token.encode()),
        st.just(b"Bearer " + known.access_token.encode()),  # a user's token, not for /admin
        st.builds(lambda t: b"Bearer " + t.encode("latin-1", "replace"), token_values(known)),
        st.builds(
            lambda s, v: s + v,
            st.sampled_from([b"Bearer ", b"Basic ", b"Token ", b""]),
            header_values,
        ),
        st.integers(1_000, 20_000).map(lambda n: b"Bearer " + b"A" * n),
    )
    hostile = st.one_of(st.just(()), st.tuples(hostile_one), st.tuples(st.just(admin), hostile_one))
    return st.just((admin,)), hostile


# Never "root": a PUT of its roles would take ADMIN from the token every example uses.
path_segments = st.one_of(
    st.sampled_from(["alice", "alice", "web", "nobody", "%FF", "%00", "%2F", "..", "a%zz", "é"]),
    wild_text.map(lambda s: quote(s, safe="")),
)
json_type = st.sampled_from([b"application/json", b"application/json; charset=utf-8"])


@st.composite
def admin_probes(
    draw: st.DrawFn,
    known: Known,
    *,
    operation: tuple[str, str] | None = None,
    member: str | None = None,
) -> Probe:
    """A request to an admin operation. With ``operation``: that one, with the admin's
    token, a good content type and a hostile body (with ``member``: odd there only), so
    the body reaches the services and the store; else any operation, any part hostile."""
    templates = admin_templates()
    method, template = operation or draw(st.sampled_from(sorted(templates)))
    body = templates[(method, template)]
    path = template.format(name=draw(st.just("alice") | path_segments))
    encoded = body.map(lambda v: (b"" if method == "GET" and not v else _json(v, True), ()))
    good_auth, hostile_auth = admin_auth(known)
    return draw(
        probes(
            method=method,
            path=(st.just(path), st.sampled_from([path + "/", path.upper(), "/admin", "/admin/"])),
            content_type=(
                json_type if method != "GET" else st.none(),
                st.none() | json_type | hostile_form_type,
            ),
            authorization=(good_auth, hostile_auth),
            body=(
                encoded
                if operation is None
                else hostile_json(body)
                if member is None
                else focused_json(body, member),
                hostile_json(body),
            ),
            may_break=frozenset({"query"}) if operation else None,
        )
    )


# The members each operation takes (its template's), for the one-member-at-a-time runs.
_MEMBERS_OF: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/admin/users"): ("username", "password", "roles", "profile"),
    ("PUT", "/admin/users/{name}/roles"): ("roles",),
    ("PUT", "/admin/users/{name}/password"): ("password",),
    ("POST", "/admin/clients"): (
        "client_id",
        "grant_types",
        "scopes",
        "audiences",
        "access_token_lifetime",
        "public",
    ),
    ("POST", "/admin/keys/rotate"): ("alg", "force"),
}
_BODY_OPERATIONS = [
    ("POST", "/admin/users"),
    ("PUT", "/admin/users/{name}/roles"),
    ("PUT", "/admin/users/{name}/password"),
    ("POST", "/admin/clients"),
    ("POST", "/admin/keys/rotate"),
]


async def test_admin_json_bodies(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith")
    statuses: list[int] = []
    everything_carried: set[str] = set()
    async with running(tmp_path, **NO_LOCKOUT) as server:
        known = await prepare(server)
        # One run per operation, then one per member it takes: each gets its share.
        for operation in _BODY_OPERATIONS:
            for member in (None, *_MEMBERS_OF[operation]):
                strategy = admin_probes(known, operation=operation, member=member)
                count = 25 if member is None else 12
                seen, carried = await run_probes(server, strategy, known.secrets(), count)
                statuses += seen
                everything_carried.update(carried)
    check_logs(caplog, tuple(everything_carried))
    assert {200, 201, 400} <= set(statuses), sorted(set(statuses))


async def test_admin_requests(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith")
    async with running(tmp_path, **NO_LOCKOUT) as server:
        known = await prepare(server)
        strategy = admin_probes(known)
        statuses, carried = await run_probes(server, strategy, known.secrets(), 150)
    check_logs(caplog, carried)
    assert {200, 400, 401} <= set(statuses), sorted(set(statuses))


async def test_bodies_at_the_size_limit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Few examples, each up to twice the 64 KiB cap: near and over it, with and without a
    Content-Length."""
    caplog.set_level(logging.INFO, logger="tokensmith")
    async with running(tmp_path, **NO_LOCKOUT) as server:
        known = await prepare(server)
        auth = basic_header("web", known.client_secret)

        def build(path: str, size: int, chunked: bool) -> Probe:
            if path == "/admin/users":
                head = b'{"username": "big", "password": "'
                body = head + b"p" * max(0, size - len(head) - 2) + b'"}'
                headers = (
                    (b"Authorization", b"Bearer " + known.admin_token.encode()),
                    (b"Content-Type", b"application/json"),
                )
                return Probe("POST", path, headers, body, chunked=chunked)
            head = b"grant_type=client_credentials&scope=" if path == "/oauth/token" else b"token="
            body = head + b"r" * max(0, size - len(head))
            headers = ((b"Authorization", auth), (b"Content-Type", FORM.encode()))
            return Probe("POST", path, headers, body, chunked=chunked)

        def over_the_cap_is_refused(probe: Probe, response: httpx.Response) -> None:
            if len(probe.body) > MAX_BODY:
                assert response.status_code == 400, response.text
                assert response.json()["error"] == "invalid_request"

        strategy = st.builds(
            build,
            st.sampled_from(["/oauth/token", "/oauth/revoke", "/oauth/introspect", "/admin/users"]),
            st.sampled_from([MAX_BODY - 1, MAX_BODY, MAX_BODY + 1, 2 * MAX_BODY]),
            st.booleans(),
        )
        statuses, carried = await run_probes(
            server, strategy, known.secrets(), 12, also=over_the_cap_is_refused
        )
    check_logs(caplog, carried)
    assert 400 in statuses, statuses


# -- regressions: what the fuzzing above found, as plain tests ---------------------------


async def test_routing_errors_are_not_cached(tmp_path: Path) -> None:
    """404 and 405 are heuristically cacheable (RFC 9110): they said nothing of caching."""
    async with running(tmp_path) as server:
        for method, path, status in [
            ("GET", "/oauth/token", 405),
            ("POST", "/oauth/revocations", 405),
            ("POST", "/oauth/tokens", 404),
            ("GET", "/admin/nothing", 404),
        ]:
            response = await server.http.request(method, path)
            assert response.status_code == status
            assert response.headers["cache-control"] == "no-store"
            assert response.headers["pragma"] == "no-cache"
            assert response.json()["error"] in ("not_found", "method_not_allowed")


async def test_a_trailing_slash_is_a_404_not_a_redirect(tmp_path: Path) -> None:
    """The redirect's Location repeated the query string, credential included."""
    secret = MARK + "in-the-query"
    async with running(tmp_path) as server:
        for path in ("/oauth/token/", "/oauth/revocations/", "/admin/users/"):
            response = await server.http.post(f"{path}?password={secret}", content=b"")
            assert response.status_code == 404, (path, response.headers)
            assert "location" not in response.headers
            assert response.json() == {"error": "not_found"}
            assert secret not in response.text + str(response.headers)


# Each with a lone surrogate where a string belongs (sent as its ASCII "\ud800" escape).
_LONE_SURROGATE_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "POST",
        "/admin/users",
        {"username": "mallory", "password": USER_PASSWORD, "roles": ["\ud800"]},
    ),
    (
        "POST",
        "/admin/users",
        {"username": "mallory", "password": USER_PASSWORD, "profile": {"name": "a\udfffb"}},
    ),
    ("PUT", "/admin/users/alice/roles", {"roles": ["\udc00"]}),
    (
        "POST",
        "/admin/clients",
        {"client_id": "c1", "grant_types": ["client_credentials"], "audiences": ["\ud800"]},
    ),
    ("POST", "/admin/keys/rotate", {"alg": "\ud800"}),
]


async def test_a_lone_surrogate_in_a_json_body_is_refused(tmp_path: Path) -> None:
    """A JSON "\\ud800" escape is not text: accepted, it was stored, the answer was a 500,
    and so was every later listing that showed the row (users, audit)."""
    async with running(tmp_path) as server:
        await server.add_user("alice", USER_PASSWORD)
        admin = await make_admin(server)
        headers = {**admin.headers, "Content-Type": "application/json"}
        for method, path, body in _LONE_SURROGATE_BODIES:
            response = await server.http.request(
                method, path, content=json.dumps(body).encode("ascii"), headers=headers
            )
            assert response.status_code == 400, (path, body, response.text)
            assert response.json()["error"] == "invalid_request"
            assert response.json()["code"] == "oauth_invalid_request"
        # Nothing was written, and the listings still answer.
        for gone in ("/admin/users/mallory", "/admin/clients/c1"):
            assert (await server.http.get(gone, headers=admin.headers)).status_code == 404
        alice = await server.http.get("/admin/users/alice", headers=admin.headers)
        assert alice.json()["roles"] == ["EDITOR"]
        for listing in ("/admin/users", "/admin/audit", "/admin/clients", "/admin/keys"):
            assert (await server.http.get(listing, headers=admin.headers)).status_code == 200
        # A pair of surrogate escapes is one code point (U+1F600): that is text.
        fine = {"username": "emoji", "password": USER_PASSWORD, "profile": {"name": "\U0001f600"}}
        created = await server.http.post(
            "/admin/users", content=json.dumps(fine).encode("ascii"), headers=headers
        )
        assert created.status_code == 201, created.text
        assert created.json()["profile"] == {"name": "\U0001f600"}


async def test_a_client_lifetime_past_its_column_is_refused(tmp_path: Path) -> None:
    """SQLite raised OverflowError past 64 bits (a 500); PostgreSQL's INTEGER ends at 2**31."""
    async with running(tmp_path) as server:
        admin = await make_admin(server)
        headers = {**admin.headers, "Content-Type": "application/json"}
        body = {"client_id": "svc", "grant_types": ["client_credentials"]}
        for lifetime in (2**31, 2**63, 2**64, 10**30):
            response = await server.http.post(
                "/admin/clients",
                content=json.dumps({**body, "access_token_lifetime": lifetime}).encode(),
                headers=headers,
            )
            assert response.status_code == 400, (lifetime, response.text)
            assert response.json()["code"] == "invalid_client_metadata"
        assert (
            await server.http.get("/admin/clients/svc", headers=admin.headers)
        ).status_code == 404
        largest = {**body, "access_token_lifetime": 2**31 - 1}
        created = await server.http.post(
            "/admin/clients", content=json.dumps(largest).encode(), headers=headers
        )
        assert created.status_code == 201, created.text
