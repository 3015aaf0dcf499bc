"""Commands other than ``init``, ``serve`` and the key commands change no key.

They may run with other settings than the server's (no ``--config``, other algorithms,
another token lifetime): opening the services must neither plan the key ring from those
settings (retiring a ring the server signs with, creating or deleting a next key) nor
note their token lifetime in the database. ``init`` and ``keys prune`` still maintain.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest

from tokensmith.server.app import build_services
from tokensmith.server.settings import load_settings

from ._server_cli import PASSWORD, Cli, clean_env

TWO_ALGS = 'signing_algorithms = ["RS256", "ES256"]\n'


def _rows(cli: Cli, query: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(cli.data_dir / "tokensmith.db") as conn:
        return conn.execute(query).fetchall()


def _keys(cli: Cli) -> list[tuple[Any, ...]]:
    return _rows(
        cli,
        "SELECT kid, alg, state, created_at, activated_at, retired_at, revoked_at "
        "FROM signing_keys ORDER BY kid",
    )


def _audit(cli: Cli) -> list[tuple[Any, ...]]:
    return _rows(cli, "SELECT id, at, event, actor, subject, detail FROM audit_log ORDER BY id")


def _counters(cli: Cli) -> list[tuple[Any, ...]]:
    return _rows(cli, "SELECT name, value FROM counters ORDER BY name")


def _retention(cli: Cli) -> dict[str, int]:
    names = ("token_retention", "old_tokens_expire_by")
    return {str(name): int(value) for name, value in _counters(cli) if name in names}


def _states(cli: Cli) -> dict[tuple[str, str], int]:
    """How many keys of each (alg, state)."""
    counts: dict[tuple[str, str], int] = {}
    for _, alg, state, *_ in _keys(cli):
        counts[alg, state] = counts.get((alg, state), 0) + 1
    return counts


def _ok(cli: Cli, *args: str, env: dict[str, str], stdin: str | None = None) -> str:
    result = cli.run(*args, env=env, stdin=stdin)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _server_starts(env: dict[str, str]) -> None:
    """What `tokensmith serve` does before it listens, with ``env``'s settings: the
    deployment's settings open the services, maintain the ring and are recorded."""
    settings = load_settings(env)

    async def start() -> None:
        async with build_services(settings, maintain_keys=True):
            pass

    anyio.run(start)


def _keys_json(cli: Cli, env: dict[str, str]) -> Any:
    return json.loads(_ok(cli, "keys", "list", "--json", env=env))


def _run_everyday_commands(cli: Cli, env: dict[str, str], suffix: str) -> None:
    """The read-only commands and the user and client changes, with ``env``'s settings."""
    for command in (("users", "list"), ("keys", "list"), ("audit",), ("clients", "list")):
        _ok(cli, *command, env=env)
    _ok(cli, "users", "add", f"user-{suffix}", env=env, stdin=PASSWORD + "\n")
    _ok(cli, "clients", "add", f"svc-{suffix}", "--grant", "client_credentials", env=env)


@pytest.fixture
def two_algs(tmp_path: Path) -> tuple[Cli, dict[str, str]]:
    """A data directory configured for RS256 and ES256, and the environment naming it."""
    cli = Cli(tmp_path / "var")
    config = tmp_path / "conf.toml"
    config.write_text(TWO_ALGS)
    return cli, clean_env(cli.data_dir, TOKENSMITH_CONFIG=str(config))


def test_commands_without_the_config_keep_a_ring_it_names(two_algs: tuple[Cli, Any]) -> None:
    cli, configured = two_algs
    _ok(cli, "init", env=configured)
    _ok(cli, "keys", "rotate", "--alg", "ES256", "--force", env=configured)
    assert _states(cli) == {
        ("ES256", "current"): 1,
        ("ES256", "retired"): 1,
        ("RS256", "current"): 1,
    }
    keys, audit, listed = _keys(cli), _audit(cli), _keys_json(cli, configured)

    # Without the config: RS256 alone. Before, the first of these retired the ES256 key
    # (key_retired, reason "scheduled", actor "-").
    _run_everyday_commands(cli, cli.env, "plain")

    assert _keys(cli) == keys
    assert _keys_json(cli, configured) == listed
    new = _audit(cli)[len(audit) :]
    assert _audit(cli)[: len(audit)] == audit
    assert [(event, actor) for _, _, event, actor, *_ in new] == [
        ("user_created", "cli"),
        ("client_created", "cli"),
    ]


def test_a_lone_next_key_is_not_deleted_and_made_again(two_algs: tuple[Cli, Any]) -> None:
    cli, configured = two_algs
    _ok(cli, "init", env=cli.env)  # RS256 only
    # The server restarted with the config: ES256 added beside a signing RS256 is
    # published first.
    _server_starts(configured)
    assert _states(cli) == {("ES256", "next"): 1, ("RS256", "current"): 1}
    keys, audit = _keys(cli), _audit(cli)

    # Alternating without and with the config: before, each run without it deleted the
    # next key (a dropped ring) and each run with it made a new one.
    for _ in range(2):
        _ok(cli, "users", "list", env=cli.env)
        _ok(cli, "users", "list", env=configured)
    _run_everyday_commands(cli, cli.env, "plain")
    _run_everyday_commands(cli, configured, "conf")

    assert _keys(cli) == keys
    assert not [row for row in _audit(cli)[len(audit) :] if str(row[2]).startswith("key_")]


def test_no_rs256_key_is_made_in_an_es256_data_directory(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "var")
    es256 = clean_env(cli.data_dir, TOKENSMITH_SIGNING_ALGORITHMS="ES256")
    _ok(cli, "init", env=es256)
    assert _states(cli) == {("ES256", "current"): 1}
    keys, audit = _keys(cli), _audit(cli)

    # RS256 (the default) is not this deployment's: before, a plain `users list` made
    # an RS256 next key, which a server running with ES256 then published.
    _run_everyday_commands(cli, cli.env, "plain")

    assert _keys(cli) == keys
    assert [r[2] for r in _audit(cli)[len(audit) :]] == ["user_created", "client_created"]
    assert [k["alg"] for k in _keys_json(cli, cli.env)] == ["ES256"]


def test_serve_maintains_the_ring_and_init_only_a_new_one(two_algs: tuple[Cli, Any]) -> None:
    cli, configured = two_algs
    _ok(cli, "init", env=cli.env)  # a new deployment: its first key
    assert _states(cli) == {("RS256", "current"): 1}
    keys, counters = _keys(cli), _counters(cli)

    # init again, with other settings (as after an issuer change, without --config):
    # the deployment exists, its ring is the server's.
    _ok(cli, "init", "--admin", "root", env=configured, stdin=PASSWORD + "\n")
    assert _keys(cli) == keys and _counters(cli) == counters

    # The server restarted with both algorithms: ES256 is published before it signs.
    _server_starts(configured)
    assert _states(cli) == {("ES256", "next"): 1, ("RS256", "current"): 1}
    assert "key ring: nothing due" in _ok(cli, "keys", "prune", env=configured)

    # A fresh data directory: init gives every configured ring its first key.
    fresh = Cli(cli.data_dir.parent / "fresh")
    fresh_env = clean_env(fresh.data_dir, TOKENSMITH_CONFIG=configured["TOKENSMITH_CONFIG"])
    out = _ok(fresh, "init", env=fresh_env)
    assert "signing key: ES256 " in out and "signing key: RS256 " in out
    assert _states(fresh) == {("ES256", "current"): 1, ("RS256", "current"): 1}


def test_keys_prune_plans_from_its_settings_when_no_server_recorded_any(
    two_algs: tuple[Cli, Any],
) -> None:
    cli, configured = two_algs
    _ok(cli, "init", env=cli.env)
    # A deployment no server has started since its key settings were first recorded.
    with sqlite3.connect(cli.data_dir / "tokensmith.db") as conn:
        conn.execute("DELETE FROM counters WHERE name LIKE 'key_%'")
    out = _ok(cli, "keys", "prune", env=configured)
    assert "created a new ES256 key (next)" in out
    (created,) = [row for row in _audit(cli) if row[2] == "key_created" and "ES256" in row[5]]
    assert created[3] == "cli"


def test_read_only_commands_do_not_note_their_token_lifetime(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "var")
    hour = clean_env(cli.data_dir, TOKENSMITH_ACCESS_TOKEN_LIFETIME="1h")
    _ok(cli, "init", env=hour)  # init notes the lifetime, as a server start does
    recorded = _retention(cli)
    assert recorded["token_retention"] > 3600 and recorded["old_tokens_expire_by"] == 0
    _ok(cli, "keys", "rotate", "--force", env=hour)  # the first key is retired now
    counters = _counters(cli)
    (retired,) = [k for k in _keys_json(cli, hour) if k["state"] == "retired"]
    assert retired["deleted_after"] == retired["retired_at"] + recorded["token_retention"]

    # A lower lifetime (the default 15 minutes) and a higher one: before, either was
    # noted (the lower one also moved old_tokens_expire_by), as if the server had
    # restarted with it.
    two_hours = clean_env(cli.data_dir, TOKENSMITH_ACCESS_TOKEN_LIFETIME="2h")
    _run_everyday_commands(cli, cli.env, "short")
    assert _counters(cli) == counters
    _ok(cli, "users", "list", env=two_hours)
    assert _counters(cli) == counters

    # Listed with the lower lifetime, the retired key is still kept for the tokens the
    # stored lifetime covers: never deleted earlier than the server would.
    (shown,) = [k for k in _keys_json(cli, cli.env) if k["state"] == "retired"]
    assert shown["deleted_after"] >= retired["deleted_after"]
    assert _counters(cli) == counters


@pytest.mark.parametrize("command", [("keys", "prune"), ("keys", "rotate")])
def test_key_commands_refuse_other_settings_than_the_servers(
    two_algs: tuple[Cli, Any], command: tuple[str, ...]
) -> None:
    cli, configured = two_algs
    _ok(cli, "init", env=configured)  # a first start records the deployment's settings
    keys, audit = _keys(cli), _audit(cli)

    # Without the config (RS256 alone) a pass would wind the ES256 ring down under a
    # server that signs with it; with a shorter pre-publication period it would activate
    # a next key before verifiers' caches hold it.
    short = {**configured, "TOKENSMITH_KEY_PREPUBLISH": "3600"}
    for env, says in (
        (cli.env, "TOKENSMITH_SIGNING_ALGORITHMS is RS256 here, ES256,RS256 for the server"),
        (short, "TOKENSMITH_KEY_PREPUBLISH is 3600 s here, 86400 s for the server"),
    ):
        result = cli.run(*command, env=env)
        assert result.returncode == 1
        assert result.stderr.startswith("error: key_settings_differ: ")
        assert says in result.stderr and "--config" in result.stderr
        assert _keys(cli) == keys and _audit(cli) == audit

    _ok(cli, *command, env=configured)  # the server's settings


def test_an_es256_deployment_gets_no_rs256_key_from_a_plain_rotate(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "var")
    _ok(cli, "init", env=clean_env(cli.data_dir, TOKENSMITH_SIGNING_ALGORITHMS="ES256"))
    keys = _keys(cli)
    result = cli.run("keys", "rotate", env=cli.env)  # RS256, the default, is not this one's
    assert result.returncode == 1 and "key_settings_differ" in result.stderr
    assert _keys(cli) == keys


def test_the_servers_own_algorithm_switch_is_not_refused(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "var")
    _ok(cli, "init", env=cli.env)  # RS256
    es256 = clean_env(cli.data_dir, TOKENSMITH_SIGNING_ALGORITHMS="ES256")
    _server_starts(es256)  # RS256 keeps signing while the ES256 key is published
    assert _states(cli) == {("ES256", "next"): 1, ("RS256", "current"): 1}
    assert "key ring: nothing due" in _ok(cli, "keys", "prune", env=es256)
    _ok(cli, "keys", "rotate", "--alg", "ES256", "--force", env=es256)
    assert _states(cli)[("ES256", "current")] == 1
    assert "key_settings_differ" in cli.run("keys", "prune", env=cli.env).stderr


def test_init_leaves_a_deployment_in_use_alone_even_without_recorded_settings(
    two_algs: tuple[Cli, Any],
) -> None:
    cli, configured = two_algs
    _ok(cli, "init", env=configured)
    _ok(cli, "clients", "add", "svc", "--grant", "client_credentials", env=configured)
    # A deployment from before key settings were recorded: it has keys and clients.
    with sqlite3.connect(cli.data_dir / "tokensmith.db") as conn:
        conn.execute("DELETE FROM counters WHERE name LIKE 'key_%'")
    keys = _keys(cli)
    _ok(cli, "init", "--admin", "root", env=cli.env, stdin=PASSWORD + "\n")  # RS256 only
    assert _keys(cli) == keys  # the ES256 ring the server signs with is not wound down
