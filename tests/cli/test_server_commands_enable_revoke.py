"""``users enable``, ``users revoke-tokens``, ``clients disable`` and ``clients enable``
through the real console script, with ``tokensmith serve`` running on the same data
directory: the running server sees user changes at once and client changes within
``client_cache_ttl``, as docs/cli.md says.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from ._server_cli import PASSWORD, SCRIPT, Cli, clean_env

STARTED = "Application startup complete"
CACHE_TTL = 1  # the server's client_cache_ttl, in seconds
#: One user per test, so no test's logins or revocations count in another's.
USERS = ("alice", "carol", "bob", "dave", "erin")


def password_of(username: str) -> str:
    return f"{username} password 1234"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    cli: Cli
    base: str
    secrets: dict[str, str]

    def token(self, client_id: str, **form: str) -> httpx.Response:
        return httpx.post(
            f"{self.base}/oauth/token",
            data=form,
            auth=(client_id, self.secrets[client_id]),
            timeout=10,
        )

    def login(self, username: str) -> httpx.Response:
        """A password grant by the client `web`; asked again when the server says to retry
        (a login in the same second as a revocation of the user's tokens gets 503)."""
        for _ in range(5):
            answer = self.token(
                "web", grant_type="password", username=username, password=password_of(username)
            )
            if answer.status_code != 503:
                return answer
            time.sleep(float(answer.headers["Retry-After"]))
        return answer

    def active(self, access_token: str) -> bool:
        answer = httpx.post(
            f"{self.base}/oauth/introspect",
            data={"token": access_token},
            auth=("web", self.secrets["web"]),
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return bool(answer.json()["active"])

    def rows(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.cli.data_dir / "tokensmith.db") as conn:
            return conn.execute(query, params).fetchall()

    def user_id(self, username: str) -> str:
        ((user_id,),) = self.rows("SELECT id FROM users WHERE username = ?", username)
        return str(user_id)

    def audit(self, event: str, subject: str) -> list[tuple[str, dict[str, Any]]]:
        """(actor, detail) of the audit rows of this event and subject, oldest first."""
        found = self.rows(
            "SELECT actor, detail FROM audit_log WHERE event = ? AND subject = ? ORDER BY id",
            event,
            subject,
        )
        return [(actor, json.loads(detail)) for actor, detail in found]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    cli = Cli(tmp_path_factory.mktemp("enable-revoke") / "var")
    cli.ok("init", "--admin", "root", stdin=PASSWORD + "\n")
    for username in USERS:
        cli.ok("users", "add", username, "--role", "EDITOR", stdin=password_of(username) + "\n")
    secrets = {
        "web": cli.ok(
            "clients", "add", "web", "--grant", "password", "--grant", "refresh_token",
            "--audience", "api",
        ).strip(),
        "svc": cli.ok(
            "clients", "add", "svc", "--grant", "client_credentials", "--audience", "api"
        ).strip(),
    }  # fmt: skip
    cli.ok("clients", "add", "batch", "--grant", "client_credentials")
    port = _free_port()
    proc = subprocess.Popen(
        [str(SCRIPT), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=clean_env(cli.data_dir, TOKENSMITH_CLIENT_CACHE_TTL=str(CACHE_TTL)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, proc.kill)  # a server that hangs at start is killed
    watchdog.start()
    assert proc.stderr is not None
    drain = threading.Thread(target=proc.stderr.read, daemon=True)
    try:
        log = []
        for line in proc.stderr:
            log.append(line)
            if STARTED in line:
                break
        watchdog.cancel()
        assert STARTED in "".join(log), "".join(log)
        drain.start()  # the server's log is read on, so it never blocks on a full pipe
        yield Served(cli, f"http://127.0.0.1:{port}", secrets)
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if drain.is_alive():
            drain.join(timeout=5)
        proc.stderr.close()


def _within(seconds: float, check: Callable[[], bool]) -> float:
    """How long it took until ``check()`` held; fails if it did not within ``seconds``."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < seconds, "the running server did not see the change"
        time.sleep(0.1)
    return time.monotonic() - start


def _one_error_line(stderr: str, code: str) -> None:
    assert stderr.startswith(f"error: {code}: "), stderr
    assert stderr.count("\n") == 1 and stderr.endswith("\n"), stderr


def test_users_revoke_tokens_logs_the_user_out_everywhere(served: Served) -> None:
    login = served.login("alice")
    assert login.status_code == 200, login.text
    access, refresh = login.json()["access_token"], login.json()["refresh_token"]
    assert served.active(access)

    out = served.cli.ok("users", "revoke-tokens", "ALICE")  # usernames are normalized
    assert out == "user alice: logged out everywhere; its tokens are revoked (1 access)\n"

    # The running server sees it at once: no wait.
    assert not served.active(access)
    refused = served.token("web", grant_type="refresh_token", refresh_token=refresh)
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    # Logged out, not disabled: a new login works, and its token is active.
    assert served.rows("SELECT disabled FROM users WHERE username = 'alice'") == [(0,)]
    again = served.login("alice")
    assert again.status_code == 200, again.text
    assert served.active(again.json()["access_token"])
    assert served.audit("token_revoked", served.user_id("alice")) == [
        ("cli", {"token_type": "all", "access_tokens_revoked": 1})
    ]


def test_users_revoke_tokens_json(served: Served) -> None:
    logins = [served.login("carol"), served.login("carol")]
    assert [login.status_code for login in logins] == [200, 200]
    result = served.cli.run("users", "revoke-tokens", "carol", "--json")
    assert result.returncode == 0, result.stderr
    # The admin API's answer, and nothing else on stdout.
    assert json.loads(result.stdout) == {"access_tokens_revoked": 2}
    for login in logins:
        assert not served.active(login.json()["access_token"])
        refused = served.token(
            "web", grant_type="refresh_token", refresh_token=login.json()["refresh_token"]
        )
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
    assert served.audit("token_revoked", served.user_id("carol")) == [
        ("cli", {"token_type": "all", "access_tokens_revoked": 2})
    ]


def test_users_enable_lets_a_disabled_user_log_in_again(served: Served) -> None:
    before = served.login("bob")
    assert before.status_code == 200, before.text
    served.cli.ok("users", "disable", "bob")
    refused = served.login("bob")
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    assert served.cli.ok("users", "enable", "bob") == "user bob: enabled\n"

    assert served.rows("SELECT disabled FROM users WHERE username = 'bob'") == [(0,)]
    again = served.login("bob")  # the running server sees it at once
    assert again.status_code == 200, again.text
    assert served.active(again.json()["access_token"])
    # Enabling revives no token: those revoked by `disable` stay revoked.
    assert not served.active(before.json()["access_token"])
    stale = served.token(
        "web", grant_type="refresh_token", refresh_token=before.json()["refresh_token"]
    )
    assert stale.status_code == 400 and stale.json()["error"] == "invalid_grant"
    changes = [(a, d["change"]) for a, d in served.audit("user_changed", served.user_id("bob"))]
    assert changes == [("cli", "disabled"), ("cli", "enabled")]


def test_users_enable_json(served: Served) -> None:
    dave = served.login("dave")
    assert dave.status_code == 200, dave.text
    disabled = served.cli.run("users", "disable", "dave", "--json")
    assert disabled.returncode == 0, disabled.stderr
    # The admin API's answer too: the user, and the access tokens the disable revoked.
    assert json.loads(disabled.stdout)["disabled"] is True
    assert json.loads(disabled.stdout)["access_tokens_revoked"] >= 1  # the login above
    result = served.cli.run("users", "enable", "Dave", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    # users list --json's fields, with the admin API's access_tokens_revoked.
    (listed,) = [u for u in served.cli.json("users", "list") if u["username"] == "dave"]
    assert answer == {**listed, "access_tokens_revoked": 0}
    assert answer["disabled"] is False and answer["roles"] == ["EDITOR"]
    assert "argon2" not in result.stdout and password_of("dave") not in result.stdout
    login = served.login("dave")
    assert login.status_code == 200, login.text
    changes = [(a, d["change"]) for a, d in served.audit("user_changed", served.user_id("dave"))]
    assert changes == [("cli", "disabled"), ("cli", "enabled")]


def _svc_gets_a_token(served: Served) -> bool:
    answer = served.token("svc", grant_type="client_credentials")
    if answer.status_code == 200:
        return True
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client", answer.text
    return False


def test_clients_disable_then_enable(served: Served) -> None:
    assert _svc_gets_a_token(served)  # and the running server has cached its row

    assert served.cli.ok("clients", "disable", "svc") == "client svc: disabled\n"

    assert served.rows("SELECT disabled FROM clients WHERE client_id = 'svc'") == [(1,)]
    # The running server refuses it within its client_cache_ttl (plus the poll's slack).
    _within(CACHE_TTL + 5, lambda: not _svc_gets_a_token(served))
    assert not _svc_gets_a_token(served)  # and keeps refusing it

    assert served.cli.ok("clients", "enable", "svc") == "client svc: enabled\n"

    assert served.rows("SELECT disabled FROM clients WHERE client_id = 'svc'") == [(0,)]
    _within(CACHE_TTL + 5, lambda: _svc_gets_a_token(served))  # the same secret works again
    changes = [(actor, detail) for actor, detail in served.audit("client_changed", "svc")]
    assert changes == [("cli", {"change": "disabled"}), ("cli", {"change": "enabled"})]


def test_clients_disable_and_enable_json(served: Served) -> None:
    for command, disabled in (("disable", True), ("enable", False)):
        result = served.cli.run("clients", command, "batch", "--json")
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        # clients list --json's fields: never the secret or its hash.
        (listed,) = [c for c in served.cli.json("clients", "list") if c["client_id"] == "batch"]
        assert answer == listed and answer["disabled"] is disabled
        assert "secret" not in result.stdout and "sha256$" not in result.stdout
    changes = [(a, d["change"]) for a, d in served.audit("client_changed", "batch")]
    assert changes == [("cli", "disabled"), ("cli", "enabled")]


@pytest.mark.parametrize("as_json", [(), ("--json",)], ids=["text", "json"])
@pytest.mark.parametrize(
    ("command", "code"),
    [
        (("users", "enable", "nobody"), "unknown_user"),
        (("users", "revoke-tokens", "nobody"), "unknown_user"),
        (("clients", "disable", "nobody"), "unknown_client"),
        (("clients", "enable", "nobody"), "unknown_client"),
    ],
)
def test_unknown_user_or_client_is_one_error_line(
    served: Served, command: tuple[str, ...], code: str, as_json: tuple[str, ...]
) -> None:
    audit_rows = served.rows("SELECT count(*) FROM audit_log")
    result = served.cli.run(*command, *as_json)
    assert result.returncode == 1
    _one_error_line(result.stderr, code)
    assert result.stdout == ""
    assert served.rows("SELECT count(*) FROM audit_log") == audit_rows  # nothing recorded


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (("users", "enable", "erin"), "user erin: enabled\n"),
        (("users", "revoke-tokens", "erin"), "user erin: logged out everywhere; "),
        (("clients", "disable", "batch"), "client batch: disabled\n"),
        (("clients", "enable", "batch"), "client batch: enabled\n"),
    ],
)
def test_config_file_is_read(
    served: Served, tmp_path: Path, command: tuple[str, ...], says: str
) -> None:
    env = clean_env(served.cli.data_dir)
    del env["TOKENSMITH_DATA"]  # the data directory comes from the file alone
    config = tmp_path / "tokensmith.toml"
    config.write_text(f"data_dir = {json.dumps(str(served.cli.data_dir))}\n")
    ok = served.cli.run(*command, "--config", str(config), env=env)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(says)
    config.write_text('rotation_period = "1s"\n')  # out of range: refused, naming it
    refused = served.cli.run(*command, "--config", str(config), env=env)
    assert refused.returncode == 1
    # One line per bad setting, each named (docs/cli.md).
    assert refused.stderr.startswith("error: invalid_settings: "), refused.stderr
    assert "rotation_period in " in refused.stderr and refused.stdout == ""
