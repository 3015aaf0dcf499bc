"""Changing the issuer after ``tokensmith init --admin``: running ``init --admin`` again
gives the admin client the new ``{issuer}/admin`` audience (the admin API takes no other)
and says what changed; ``clients set-audiences`` changes any client's audiences.

The commands run through the real console script on a data directory of their own; the
admin API is then called in process over the same directory with the new issuer, as the
operator's server would run.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from tokensmith.server.app import create_app
from tokensmith.server.settings import Settings

from ._server_cli import PASSWORD, Cli, clean_env

OLD = "https://old-auth.example.test"
NEW = "https://auth.example.test"


def _rows(cli: Cli, query: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(cli.data_dir / "tokensmith.db") as conn:
        return conn.execute(query, params).fetchall()


def _admin_audiences(cli: Cli) -> list[str]:
    ((audiences,),) = _rows(
        cli, "SELECT audiences FROM clients WHERE client_id = 'tokensmith-admin'"
    )
    result: list[str] = json.loads(str(audiences))
    return result


def _audiences_changed(cli: Cli) -> list[tuple[object, ...]]:
    return _rows(
        cli,
        "SELECT actor, subject, client_address, detail FROM audit_log "
        "WHERE event = 'client_changed' ORDER BY id",
    )


async def _admin_api_status(data_dir: Path, issuer: str) -> int:
    """root logs in through tokensmith-admin and lists users, on a server for ``issuer``."""
    app = create_app(Settings(issuer=issuer, data_dir=data_dir))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=issuer) as http:
            form = {
                "grant_type": "password",
                "username": "root",
                "password": PASSWORD,
                "client_id": "tokensmith-admin",
            }
            login = await http.post("/oauth/token", data=form)
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            listed = await http.get("/admin/users", headers={"Authorization": f"Bearer {token}"})
            return listed.status_code


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    runner = Cli(tmp_path / "var")
    runner.env = clean_env(runner.data_dir, TOKENSMITH_ISSUER=OLD)
    out = runner.ok("init", "--admin", "root", stdin=PASSWORD + "\n")
    assert f"admin client tokensmith-admin: created (audience {OLD}/admin)" in out
    runner.env = clean_env(runner.data_dir, TOKENSMITH_ISSUER=NEW)  # the operator's change
    return runner


@pytest.mark.anyio
async def test_init_admin_after_an_issuer_change_gives_the_admin_client_the_new_audience(
    cli: Cli,
) -> None:
    # The defect: logins work, the admin API refuses every token (its audience is old).
    assert await _admin_api_status(cli.data_dir, NEW) == 401

    out = cli.ok("init", "--admin", "root")  # no password asked: root exists
    assert "admin user root: exists, left unchanged" in out
    assert (
        f"admin client tokensmith-admin: exists, audience changed: {OLD}/admin -> {NEW}/admin"
    ) in out
    assert _admin_audiences(cli) == [f"{NEW}/admin"]
    ((actor, subject, address, detail),) = _audiences_changed(cli)
    assert (actor, subject, address) == ("cli", "tokensmith-admin", None)  # no request
    assert json.loads(str(detail)) == {
        "change": "audiences",
        "added": [f"{NEW}/admin"],
        "removed": [f"{OLD}/admin"],
    }
    assert await _admin_api_status(cli.data_dir, NEW) == 200

    # Up to date: nothing changes, and the audience shown is the stored one.
    out = cli.ok("init", "--admin", "root")
    assert f"admin client tokensmith-admin: exists (audience {NEW}/admin)" in out
    assert "audience changed" not in out
    assert len(_audiences_changed(cli)) == 1


def test_init_admin_drops_an_audience_added_beside_the_admin_one(cli: Cli) -> None:
    # Another audience set by hand beside the admin one: init puts back the one the
    # admin API takes (a token naming two audiences is refused there), and says so.
    cli.ok("clients", "set-audiences", "tokensmith-admin", f"{NEW}/admin", "https://x.test")
    out = cli.ok("init", "--admin", "root")
    assert (
        "admin client tokensmith-admin: exists, audience changed: "
        f"{NEW}/admin, https://x.test -> {NEW}/admin"
    ) in out
    assert _admin_audiences(cli) == [f"{NEW}/admin"]


def test_clients_set_audiences(cli: Cli) -> None:
    secret = cli.ok("clients", "add", "svc", "--grant", "client_credentials", "--audience", "a")
    assert secret.strip()
    out = cli.ok("clients", "set-audiences", "svc", "https://b.test", "https://a.test")
    assert out == "client svc: audiences https://a.test, https://b.test\n"
    summary = cli.json("clients", "set-audiences", "svc", "https://c.test")
    assert summary["client_id"] == "svc" and summary["audiences"] == ["https://c.test"]
    [listed] = [c for c in cli.json("clients", "list") if c["client_id"] == "svc"]
    assert listed["audiences"] == ["https://c.test"]
    # None: the client can still authenticate, and is issued no token; the command says so.
    for forgotten in (("svc",), ("svc", "https://c.test", "--none")):
        refused = cli.run("clients", "set-audiences", *forgotten)
        assert refused.returncode == 2 and "--none" in refused.stderr
    result = cli.run("clients", "set-audiences", "svc", "--none")
    assert result.returncode == 0 and result.stdout == "client svc: audiences none\n"
    assert "never issued a token" in result.stderr
    rows = [r for r in _audiences_changed(cli) if r[1] == "svc"]
    changes = [json.loads(str(r[3])) for r in rows]
    assert [(c["added"], c["removed"]) for c in changes] == [
        (["https://a.test", "https://b.test"], ["a"]),
        (["https://c.test"], ["https://a.test", "https://b.test"]),
        ([], ["https://c.test"]),
    ]
    assert {(r[0], r[2]) for r in rows} == {("cli", None)}

    for args, code in (
        (("nobody", "https://a.test"), "unknown_client"),
        (("svc", "has space"), "invalid_client_metadata"),
    ):
        result = cli.run("clients", "set-audiences", *args)
        assert result.returncode == 1
        assert result.stderr.startswith(f"error: {code}: ") and result.stderr.count("\n") == 1
        assert result.stdout == ""


def test_init_admin_says_the_admin_client_is_disabled(cli: Cli) -> None:
    cli.ok("init", "--admin", "root", stdin=PASSWORD + "\n")
    cli.ok("clients", "disable", "tokensmith-admin")
    out = cli.ok("init", "--admin", "root")
    assert "admin client tokensmith-admin: exists, DISABLED" in out
    cli.ok("clients", "enable", "tokensmith-admin")
    assert "DISABLED" not in cli.ok("init", "--admin", "root")
