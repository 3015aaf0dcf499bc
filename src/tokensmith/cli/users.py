"""``tokensmith users``: add, list, set-roles, disable, enable, revoke-tokens, passwd.

Passwords come from the terminal or stdin (``read_new_password``), never from argv.
Each change is written with its audit row in the same transaction, so the log never
misses a change that happened nor records one that did not.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import click

from tokensmith.server.services import user_summary
from tokensmith.store import User

from ._context import (
    CLI_ACTOR,
    config_option,
    json_option,
    load,
    open_services,
    read_new_password,
    run_async,
)
from ._table import echo_json, echo_table, format_time

__all__ = ["users"]


@click.group()
def users() -> None:
    """Manage users (who may log in with the password grant)."""


@users.command("add")
@click.argument("username")
@click.option("--role", "roles", multiple=True, help="A role (repeat for several), e.g. ADMIN.")
@click.option("--name", default=None, help="Profile claim `name`.")
@click.option("--email", default=None, help="Profile claim `email`.")
@config_option
def add(
    username: str,
    roles: tuple[str, ...],
    name: str | None,
    email: str | None,
    config_path: Path | None,
) -> None:
    """Create USERNAME; the password is read from the terminal or stdin."""
    settings = load(config_path)
    profile = {k: v for k, v in (("name", name), ("email", email)) if v is not None}

    async def go() -> User:
        async with open_services(settings) as ctx:
            # Asked once the data directory is known to be usable, as `passwd` does.
            password = read_new_password()
            return await ctx.users.create(
                username, password, roles=roles, profile=profile, actor=CLI_ACTOR
            )

    user = run_async(go)
    click.echo(f"created user {user.username} (id {user.id}, roles {_cell(user.roles)})")


def _cell(roles: Iterable[str]) -> str:
    return ",".join(roles) or "-"


@users.command("list")
@json_option
@config_option
def list_users(as_json: bool, config_path: Path | None) -> None:
    """List users (never their password hashes)."""
    settings = load(config_path)

    async def go() -> list[User]:
        async with open_services(settings) as ctx:
            return await ctx.users.all()

    found = run_async(go)
    if as_json:
        echo_json([user_summary(u) for u in found])
        return
    rows = [
        (
            u.id,
            u.username,
            u.roles,
            u.disabled,
            u.profile.get("name"),
            u.profile.get("email"),
            format_time(u.created_at),
        )
        for u in found
    ]
    headers = ("ID", "USERNAME", "ROLES", "DISABLED", "NAME", "EMAIL", "CREATED")
    echo_table(headers, rows, empty="no users")


@users.command("set-roles")
@click.argument("username")
@click.argument("roles", nargs=-1)
@config_option
def set_roles(username: str, roles: tuple[str, ...], config_path: Path | None) -> None:
    """Replace USERNAME's roles with ROLES (none: no roles). New tokens carry them."""
    settings = load(config_path)

    async def go() -> User:
        async with open_services(settings) as ctx:
            return await ctx.users.set_roles(username, roles, actor=CLI_ACTOR)

    user = run_async(go)
    click.echo(f"user {user.username}: roles {_cell(user.roles)}")


@users.command("disable")
@click.argument("username")
@click.option(
    "--enable",
    is_flag=True,
    help="Enable the user again instead, as `users enable` (tokens revoked stay revoked).",
)
@json_option
@config_option
def disable(username: str, enable: bool, as_json: bool, config_path: Path | None) -> None:
    """Disable USERNAME: no login, no refresh; every token issued to it is revoked."""
    user, revoked = _set_disabled(username, not enable, config_path)
    if as_json:
        # The admin API's answer: the user, and how many access tokens were revoked.
        echo_json({**user_summary(user), "access_tokens_revoked": revoked})
        return
    if enable:
        click.echo(f"user {user.username}: enabled")
    else:
        click.echo(f"user {user.username}: disabled; its tokens are revoked ({revoked} access)")


@users.command("enable")
@click.argument("username")
@json_option
@config_option
def enable(username: str, as_json: bool, config_path: Path | None) -> None:
    """Enable USERNAME again: it can log in and refresh from now on.

    Enabling revives no token: those revoked when the user was disabled (every token
    issued before) stay revoked, so the user logs in again.
    """
    user, revoked = _set_disabled(username, False, config_path)
    if as_json:
        # The admin API's answer (access_tokens_revoked is 0: enabling revokes nothing).
        echo_json({**user_summary(user), "access_tokens_revoked": revoked})
        return
    click.echo(f"user {user.username}: enabled")


def _set_disabled(username: str, disabled: bool, config_path: Path | None) -> tuple[User, int]:
    settings = load(config_path)

    async def go() -> tuple[User, int]:
        async with open_services(settings) as ctx:
            return await ctx.users.set_disabled(username, disabled, actor=CLI_ACTOR)

    return run_async(go)


@users.command("revoke-tokens")
@click.argument("username")
@json_option
@config_option
def revoke_tokens(username: str, as_json: bool, config_path: Path | None) -> None:
    """Log USERNAME out everywhere: every token issued to it so far is revoked.

    Its access tokens are inactive at introspection and refused by the admin API at once
    (by verifiers once they poll the revocation feed), and its refresh tokens are
    refused. The account stays enabled: the user can log in again (a login within the
    same second is told to retry a second later, as tokens of that second are revoked too).
    """
    settings = load(config_path)

    async def go() -> tuple[User, int]:
        async with open_services(settings) as ctx:
            user = await ctx.users.get(username)  # its stored name, for the message
            return user, await ctx.users.revoke_tokens(user.username, actor=CLI_ACTOR)

    user, revoked = run_async(go)
    if as_json:
        echo_json({"access_tokens_revoked": revoked})  # the admin API's answer
        return
    click.echo(
        f"user {user.username}: logged out everywhere; its tokens are revoked ({revoked} access)"
    )


@users.command("passwd")
@click.argument("username")
@config_option
def passwd(username: str, config_path: Path | None) -> None:
    """Set USERNAME's password (read from the terminal or stdin)."""
    settings = load(config_path)

    async def go() -> User:
        async with open_services(settings) as ctx:
            await ctx.users.get(username)  # no password is asked for a user that is not there
            password = read_new_password("New password")
            return await ctx.users.set_password(username, password, actor=CLI_ACTOR)

    user = run_async(go)
    click.echo(f"user {user.username}: password changed")
