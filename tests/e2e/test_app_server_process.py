"""The whole system in real processes on 127.0.0.1: a token server and both application servers.

``examples/system.py`` prepares a data directory and starts ``tokensmith serve`` and the
example application servers (FastAPI on uvicorn, Flask on Werkzeug), both polling the
revocation feed every second. One system serves the whole module; the tests run in file
order because the later ones change it (a key rotation, then the token server stopped).

What the application servers are checked for: the roles of the routes; every kind of
refused token (401 with RFC 6750's challenge); a revocation seen within one poll; a key
rotation learned without a restart, the old key still accepted while it is published; a
flood of unknown kids costing at most one JWKS fetch per cooldown, counted in the token
server's own access log; and verifying on with cached keys once the token server stops.

Tokens the token server would never issue (expired, another issuer, another ``typ``)
are signed with its real signing key, read from its data directory the way the server
reads it: the verifier must refuse them for that one flaw, and a control token made the
same way with no flaw is accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tokensmith.jose import JWK, JWKSet, decode_unverified, encode_jwt, new_jti
from tokensmith.server.services import KeyRing, load_or_create_master_key
from tokensmith.server.settings import load_settings
from tokensmith.store import Database
from tokensmith.verify import JWKSCachePolicy

from .helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.system import (  # noqa: E402
    Demo,
    prepare,
    start_app_server,
    start_token_server,
    token_server_env,
)

FLAVOURS = ["fastapi", "flask"]
REALM = "app"
#: The application servers use the SDK's default cache policy (no setting changes it).
COOLDOWN = JWKSCachePolicy().cooldown
POLL = 1.0
INVALID = re.compile(
    r'Bearer realm="app", error="invalid_token", error_description="(?P<d>[^"\\]+)"'
)
JWKS_FETCH = re.compile(r'"GET /\.well-known/jwks\.json(?:\?[^ ]*)? HTTP/1\.1"')
OTHER_AUDIENCE = "http://127.0.0.1:9/another-service"
#: Seconds for the token server's access log to write what it has buffered (every 0.2 s).
ACCESS_LOG_CATCH_UP = 0.6


@dataclass
class System:
    demo: Demo
    apps: dict[str, str]
    #: When each application server was launched and answered first: its start-up JWKS
    #: fetch (which opens the cooldown) came in between.
    started_at: dict[str, float]
    ready_at: dict[str, float]
    token_server: ExitStack
    #: The token server's signing key when the module started (private; read from its store).
    signing_key: JWK
    http: httpx.Client
    other_secret: str = ""
    jwks_fetches_at_start: int = 0
    _tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return self.demo.issuer

    def jwks_fetches(self) -> int:
        """``GET /.well-known/jwks.json`` lines in the token server's access log.

        Read once the log has caught up: the server writes its lines every 0.2 s.
        """
        time.sleep(ACCESS_LOG_CATCH_UP)
        log = Path(self.demo.data_dir) / "token-server.log"
        return len(JWKS_FETCH.findall(log.read_text(encoding="utf-8", errors="replace")))

    def login(self, username: str, *, client: str = "demo", password: str | None = None) -> str:
        return self.login_pair(username, client=client, password=password)["access_token"]

    def login_pair(
        self, username: str, *, client: str = "demo", password: str | None = None
    ) -> dict[str, str]:
        if password is None:
            password = {"john": self.demo.john_password, "admin": self.demo.admin_password}[
                username
            ]
        form = {"grant_type": "password", "username": username, "password": password}
        if client == "tokensmith-admin":  # the public client `init --admin` created
            form["client_id"] = client
            auth = None
        else:
            secret = {"demo": self.demo.client_secret, "other-app": self.other_secret}[client]
            auth = (client, secret)
        response = self.http.post(f"{self.issuer}/oauth/token", data=form, auth=auth)
        assert response.status_code == 200, response.text
        pair: dict[str, str] = response.json()
        return pair

    def token(self, username: str, *, client: str = "demo") -> str:
        """A token of ``username`` from ``client``, logged in once for the module."""
        key = (username, client)
        if key not in self._tokens:
            self._tokens[key] = self.login(username, client=client)
        return self._tokens[key]

    def call(
        self, flavour: str, method: str, path: str, access_token: str | None
    ) -> httpx.Response:
        headers = {} if access_token is None else {"Authorization": f"Bearer {access_token}"}
        return self.http.request(method, self.apps[flavour] + path, headers=headers)

    def admin_api(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        admin = self.login("admin", client="tokensmith-admin")
        response = self.http.request(
            method,
            f"{self.issuer}{path}",
            json=body,
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert response.status_code in (200, 201), response.text
        answer: dict[str, Any] = response.json()
        return answer


def read_signing_key(demo: Demo) -> JWK:
    """The token server's current private signing key, from its database and master key."""
    settings = load_settings(token_server_env(demo))

    async def read() -> JWK:
        db = Database.open(settings.resolved_database_url())
        try:
            ring = await KeyRing.load(db, load_or_create_master_key(settings), settings)
            return ring.signer()
        finally:
            await db.dispose()

    return anyio.run(read)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    token_port = free_port()
    ports = {flavour: free_port() for flavour in FLAVOURS}
    apps = {flavour: f"http://127.0.0.1:{port}" for flavour, port in ports.items()}
    issuer = f"http://127.0.0.1:{token_port}"
    # Both application servers answer to one audience: the application's URL.
    demo = prepare(tmp_path_factory.mktemp("e2e-apps") / "var", issuer, apps["fastapi"])
    with ExitStack() as stack:
        token_server = stack.enter_context(start_token_server(demo, token_port))
        http = stack.enter_context(httpx.Client(timeout=30))
        system = System(demo, apps, {}, {}, token_server, read_signing_key(demo), http)
        # A second application: the same users, another audience.
        other = system.admin_api(
            "POST",
            "/admin/clients",
            {"client_id": "other-app", "grant_types": ["password"], "audiences": [OTHER_AUDIENCE]},
        )
        system.other_secret = other["client_secret"]
        for flavour in FLAVOURS:
            system.started_at[flavour] = time.monotonic()
            stack.enter_context(start_app_server(demo, ports[flavour], flavour=flavour, poll=POLL))
            system.ready_at[flavour] = time.monotonic()
        system.jwks_fetches_at_start = system.jwks_fetches()
        # One each, at start-up; counted in the token server's access log (on by default).
        assert system.jwks_fetches_at_start == len(FLAVOURS), "no access log to count in?"
        yield system


# -- token helpers ------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def like(system: System, access_token: str, **changes: Any) -> dict[str, Any]:
    """The claims of a real token with ``changes`` (None removes a claim) and a new jti."""
    claims = dict(decode_unverified(access_token).claims)
    claims["jti"] = new_jti()
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def sign(system: System, claims: dict[str, Any], *, typ: str | None = "at+jwt") -> str:
    """Signed with the token server's own key."""
    return encode_jwt(claims, system.signing_key, typ=typ)


def tampered(access_token: str, **changes: Any) -> str:
    head, body, signature = access_token.split(".")
    payload = json.loads(unb64(body))
    payload.update(changes)
    return f"{head}.{b64(json.dumps(payload).encode())}.{signature}"


def unsigned(access_token: str) -> str:
    header = dict(decode_unverified(access_token).header, alg="none")
    body = access_token.split(".")[1]
    return f"{b64(json.dumps(header).encode())}.{body}."


def hs256_with_public_key(system: System, access_token: str) -> str:
    """Algorithm confusion: HMAC keyed with the published public key's PEM."""
    header = dict(decode_unverified(access_token).header, alg="HS256")
    signing_input = f"{b64(json.dumps(header).encode())}.{access_token.split('.')[1]}"
    secret = system.signing_key.public().to_pem()
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def assert_invalid_token(response: httpx.Response, access_token: str | None = None) -> str:
    """401 with RFC 6750's invalid_token challenge and JSON body, echoing no part of the token."""
    assert response.status_code == 401, response.text
    challenge = response.headers["www-authenticate"]
    match = INVALID.fullmatch(challenge)
    assert match is not None, challenge
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": "invalid_token", "error_description": match["d"]}
    for part in (access_token or "").split("."):
        assert len(part) < 8 or (part not in response.text and part not in challenge)
    return match["d"]


def wait_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def settled_jwks_fetches(system: System) -> int:
    """The count once the access log has caught up with the responses already received."""
    return system.jwks_fetches()


# -- roles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_public_route_and_no_token(system: System, flavour: str) -> None:
    response = system.call(flavour, "GET", "/public", None)
    assert response.status_code == 200
    for method, path in (("GET", "/me"), ("POST", "/create"), ("POST", "/delete")):
        response = system.call(flavour, method, path, None)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == f'Bearer realm="{REALM}"'


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_token_in_the_query_string_is_refused_and_never_logged(
    system: System, flavour: str
) -> None:
    token = system.token("john")
    url = f"{system.apps[flavour]}/me?access_token={token}"
    response = system.http.get(url)
    assert response.status_code == 401  # RFC 6750 section 2.3 is not accepted
    assert response.headers["www-authenticate"] == f'Bearer realm="{REALM}"'
    time.sleep(ACCESS_LOG_CATCH_UP)
    logs = [
        Path(system.demo.data_dir) / name
        for name in ("app-server.log", "flask-app.log", "token-server.log")
    ]
    text = "".join(log.read_text(encoding="utf-8", errors="replace") for log in logs)
    assert "GET /me HTTP/1.1" in text  # the request is logged, without its query
    assert token not in text and token.split(".")[2] not in text
    assert "access_token=" not in text


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_login_then_create_and_delete_by_role(system: System, flavour: str) -> None:
    john = system.login("john")
    me = system.call(flavour, "GET", "/me", john)
    assert me.status_code == 200, me.text
    assert me.json()["roles"] == ["EDITOR"]
    assert me.json()["client_id"] == "demo"
    assert me.json()["scopes"] == ["api"]
    assert system.call(flavour, "POST", "/create", john).status_code == 200
    refused = system.call(flavour, "POST", "/delete", john)
    assert refused.status_code == 403
    assert refused.headers["www-authenticate"].startswith(
        f'Bearer realm="{REALM}", error="insufficient_scope"'
    )
    assert refused.json()["error"] == "insufficient_scope"

    admin = system.login_pair("admin")
    assert system.call(flavour, "POST", "/delete", admin["access_token"]).json()["deleted"] == "ok"
    assert system.call(flavour, "POST", "/create", admin["access_token"]).status_code == 200
    # A refreshed access token is as good as the first.
    refreshed = system.http.post(
        f"{system.issuer}/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": admin["refresh_token"]},
        auth=(system.demo.client_id, system.demo.client_secret),
    )
    assert refreshed.status_code == 200, refreshed.text
    access_token = refreshed.json()["access_token"]
    assert access_token != admin["access_token"]
    assert system.call(flavour, "POST", "/delete", access_token).status_code == 200


# -- refused tokens ---------------------------------------------------------------------------


def _expired(system: System, john: str) -> str:
    # An hour past exp: far beyond the verifier's leeway (60 s by default).
    now = int(time.time())
    return sign(system, like(system, john, iat=now - 7200, exp=now - 3600))


def _forged_same_kid(system: System, john: str) -> str:
    foreign = JWK.generate("RS256", kid=system.signing_key.kid)
    return encode_jwt(like(system, john), foreign, typ="at+jwt")


REFUSED: dict[str, Callable[[System, str], str]] = {
    "tampered_roles": lambda s, john: tampered(john, roles=["ADMIN"]),
    "tampered_sub": lambda s, john: tampered(john, sub="1"),
    "forged_with_a_foreign_key": _forged_same_kid,
    "expired": _expired,
    "wrong_issuer": lambda s, john: sign(s, like(s, john, iss="http://127.0.0.1:9")),
    "wrong_audience_signed": lambda s, john: sign(s, like(s, john, aud=OTHER_AUDIENCE)),
    "wrong_audience_other_client": lambda s, john: s.token("john", client="other-app"),
    "admin_api_token": lambda s, john: s.token("admin", client="tokensmith-admin"),
    "wrong_typ": lambda s, john: sign(s, like(s, john), typ="JWT"),
    "no_typ": lambda s, john: sign(s, like(s, john), typ=None),
    "unsigned_alg_none": lambda s, john: unsigned(john),
    "hs256_with_the_public_key": hs256_with_public_key,
}


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_token_signed_with_the_servers_key_is_a_valid_control(
    system: System, flavour: str
) -> None:
    john = system.token("john")
    made = sign(system, like(system, john, roles=["ADMIN"]))
    assert system.call(flavour, "POST", "/delete", made).status_code == 200


@pytest.mark.parametrize("kind", list(REFUSED))
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_refused_token_is_401_invalid_token(system: System, flavour: str, kind: str) -> None:
    john = system.token("john")
    bad = REFUSED[kind](system, john)
    if kind.startswith("wrong_audience") or kind == "admin_api_token":
        assert decode_unverified(bad).claims["aud"] != system.demo.app_url
    fetches = system.jwks_fetches()
    for method, path in (("POST", "/delete"), ("POST", "/create"), ("GET", "/public")):
        description = assert_invalid_token(system.call(flavour, method, path, bad), bad)
    if kind == "expired":
        assert description == "The token has expired."
    # Every kid here is known: no refused token makes the application refetch keys.
    assert settled_jwks_fetches(system) == fetches


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_another_scheme_and_a_query_token_are_not_credentials(system: System, flavour: str) -> None:
    john = system.token("john")
    basic = system.http.post(
        system.apps[flavour] + "/create", auth=("john", system.demo.john_password)
    )
    # RFC 6750 section 3.1: an unsupported method gets the bare challenge, no error code.
    assert basic.status_code == 401
    assert basic.headers["www-authenticate"] == f'Bearer realm="{REALM}"'
    assert system.demo.john_password not in basic.text
    query = system.http.post(system.apps[flavour] + "/create", params={"access_token": john})
    assert query.status_code == 401
    assert query.headers["www-authenticate"] == f'Bearer realm="{REALM}"'
    lower = system.http.post(
        system.apps[flavour] + "/create", headers={"Authorization": f"bearer {john}"}
    )
    assert lower.status_code == 200
    # Two Authorization headers (Werkzeug joins them with a comma, uvicorn passes both).
    admin = system.token("admin")
    for second in (f"Bearer {admin}", f"Bearer {john}", "Basic am9objpwdw=="):
        headers = [("Authorization", f"Bearer {john}"), ("Authorization", second)]
        both = system.http.post(system.apps[flavour] + "/delete", headers=headers)
        assert_invalid_token(both, john)


# -- revocation -------------------------------------------------------------------------------


def _refused_within(system: System, flavour: str, access_token: str, seconds: float) -> float:
    """How long until the application refuses ``access_token`` (fails past ``seconds``)."""
    start = time.monotonic()
    while True:
        response = system.call(flavour, "GET", "/me", access_token)
        elapsed = time.monotonic() - start
        if response.status_code != 200:
            assert assert_invalid_token(response) == "The token has been revoked."
            return elapsed
        assert elapsed <= seconds, f"still accepted {elapsed:.1f} s after the revocation"
        time.sleep(0.1)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_revoked_token_is_refused_within_one_poll(system: System, flavour: str) -> None:
    john, other = system.login("john"), system.login("john")
    assert system.call(flavour, "GET", "/me", john).status_code == 200  # now cached
    revoked = system.http.post(
        f"{system.issuer}/oauth/revoke",
        data={"token": john},
        auth=(system.demo.client_id, system.demo.client_secret),
    )
    assert revoked.status_code == 200
    _refused_within(system, flavour, john, 2 * POLL + 1)
    # Only that token: john's other token still works.
    assert system.call(flavour, "GET", "/me", other).status_code == 200


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_log_out_everywhere_is_refused_within_one_poll(system: System, flavour: str) -> None:
    """The admin API's revoke-tokens: a not-before time for the subject, through the feed."""
    username, password = f"mary-{flavour}", secrets.token_urlsafe(16)
    created = system.admin_api(
        "POST", "/admin/users", {"username": username, "password": password, "roles": ["EDITOR"]}
    )
    assert created["username"] == username
    first = system.login(username, password=password)
    second = system.login(username, password=password)
    for access_token in (first, second):
        assert system.call(flavour, "POST", "/create", access_token).status_code == 200
    system.admin_api("POST", f"/admin/users/{username}/revoke-tokens", {})
    revoked_at = time.time()
    _refused_within(system, flavour, first, 2 * POLL + 1)
    _refused_within(system, flavour, second, 0.5)
    # Logging in again works from the next second on (tokens of the log-out's own
    # second are refused: iat counts whole seconds; the server answers 503 till then).
    time.sleep(max(0.0, int(revoked_at) + 1 - time.time()))
    again = system.login(username, password=password)
    assert system.call(flavour, "POST", "/create", again).status_code == 200


# -- key rotation and a flood of unknown kids --------------------------------------------------


def _flood(system: System, flavour: str, count: int) -> list[int]:
    """``count`` requests, 16 at a time, each with a token of a kid nobody published."""
    # The issuer's own algorithm: another one is refused by the allow-list (what the
    # discovery document announces) before any kid is looked up.
    foreign = JWK.generate("RS256")
    john = system.token("john")
    tokens = [
        encode_jwt(like(system, john), foreign, typ="at+jwt", kid=secrets.token_urlsafe(12))
        for _ in range(count)
    ]
    with ThreadPoolExecutor(16) as pool:
        return list(
            pool.map(lambda t: system.call(flavour, "POST", "/create", t).status_code, tokens)
        )


def test_key_rotation_learned_from_the_one_fetch_a_kid_flood_makes(system: System) -> None:
    """Old-key tokens keep working; new-kid tokens work once the cooldown lets one fetch run.

    The application servers fetched the JWKS at start-up, which opened the cooldown
    (``COOLDOWN`` s). After it, a flood of 200 tokens with unknown kids makes exactly one
    fetch per application server, counted at the token server. That fetch also brings
    the rotated key set: tokens of the new kid then pass with no further fetch and no
    restart.
    """
    old = system.login("john")
    old_kid = decode_unverified(old).header["kid"]
    for flavour in FLAVOURS:
        assert system.call(flavour, "POST", "/create", old).status_code == 200

    answer = system.admin_api("POST", "/admin/keys/rotate", {"force": True})
    assert answer["actions"], answer
    new = system.login("john")
    new_kid = decode_unverified(new).header["kid"]
    assert new_kid != old_kid
    published = JWKSet.from_json(system.http.get(f"{system.issuer}/.well-known/jwks.json").content)
    assert {key.kid for key in published} >= {old_kid, new_kid}
    for flavour in FLAVOURS:
        # The old key is still published and cached: its tokens still pass.
        assert system.call(flavour, "POST", "/create", old).status_code == 200
        if time.monotonic() < system.started_at[flavour] + COOLDOWN - 1:
            # Still in the cooldown the start-up fetch opened: the new kid is unknown and
            # no fetch may run yet (nor may this miss delay the next one: see the flood).
            early = system.call(flavour, "POST", "/create", new)
            assert assert_invalid_token(early, new) == "No key matches the token's kid."

    # No fetch since start-up, so the cooldown ends COOLDOWN s after the later start.
    assert settled_jwks_fetches(system) == system.jwks_fetches_at_start + 1  # ours, above
    wait_until(max(system.ready_at.values()) + COOLDOWN + 0.5)

    for flavour in FLAVOURS:
        before = system.jwks_fetches()
        start = time.monotonic()
        statuses = _flood(system, flavour, 200)
        took = time.monotonic() - start
        assert statuses == [401] * 200
        assert took < COOLDOWN, "the flood outlasted one cooldown: the count below means less"
        assert settled_jwks_fetches(system) - before == 1, flavour

    fetches = system.jwks_fetches()
    for flavour in FLAVOURS:
        response = system.call(flavour, "POST", "/create", new)
        assert response.status_code == 200, (flavour, response.text)
        assert system.call(flavour, "POST", "/create", old).status_code == 200
    assert settled_jwks_fetches(system) == fetches


# -- the token server stops -----------------------------------------------------------------


def test_token_server_stopped_the_cached_keys_keep_verifying(system: System) -> None:
    seen, unseen = system.login("john"), system.login("admin")
    for flavour in FLAVOURS:
        assert system.call(flavour, "GET", "/me", seen).status_code == 200

    system.token_server.close()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{system.issuer}/readyz", timeout=2)
    time.sleep(2 * POLL)  # a revocation poll or two fails meanwhile

    for flavour in FLAVOURS:
        assert system.call(flavour, "POST", "/create", seen).status_code == 200
        assert system.call(flavour, "POST", "/delete", seen).status_code == 403
        # Never presented before: verified with the cached keys, not from a cache of tokens.
        assert system.call(flavour, "POST", "/delete", unseen).status_code == 200
        assert_invalid_token(system.call(flavour, "POST", "/create", tampered(seen, sub="1")))
        assert system.call(flavour, "GET", "/me", None).status_code == 401


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_app_server_that_never_got_keys_answers_503(system: System, flavour: str) -> None:
    """Started while the token server is down: no key set, which is not the client's fault."""
    access_token = system.token("john")
    system.token_server.close()  # already stopped by the test above, when it ran
    port = free_port()
    with start_app_server(system.demo, port, flavour=flavour, poll=POLL):
        url = f"http://127.0.0.1:{port}"
        assert system.http.get(f"{url}/public").status_code == 200
        response = system.http.post(
            f"{url}/create", headers={"Authorization": f"Bearer {access_token}"}
        )
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        assert "retry-after" in response.headers
        assert "www-authenticate" not in response.headers
        missing = system.http.post(f"{url}/create")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == f'Bearer realm="{REALM}"'
