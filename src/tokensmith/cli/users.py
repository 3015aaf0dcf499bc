"""``tokensmith users``: add, list, set-roles, disable (or enable), passwd.

Passwords come from the terminal or stdin (``read_new_password``), never from argv.
Each change is written with its audit row in the same transaction, so the log never
misses a change that happened nor records one that did not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tokensmith.store import AuditEvent, Database, Repositories, UnknownUser, User

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

if TYPE_CHECKING:  # the web stack is imported only when a command opens the services
    from tokensmith.server.app import ServerContext

__all__ = ["create_user", "users"]


def _now(ctx: ServerContext) -> int:
    return int(ctx.clock.now())


def _roles(values: Iterable[str]) -> list[str]:
    # Roles are compared as given in tokens; upper case is the documented convention
    # (EDITOR, ADMIN), so "admin" typed by an operator means ADMIN.
    return list(dict.fromkeys(v.strip().upper() for v in values if v.strip()))


def user_json(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "username": user.username,
        "roles": list(user.roles),
        "disabled": user.disabled,
        "profile": dict(user.profile),
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


async def create_user(
    ctx: ServerContext,
    username: str,
    password: str,
    *,
    roles: Iterable[str],
    profile: Mapping[str, str] | None = None,
) -> User:
    """Hash (in a worker thread, outside the transaction) and store a user with its audit row."""
    password_hash = await ctx.passwords.hash_async(password)
    now = _now(ctx)
    async with ctx.db.transaction() as session:
        repos = Repositories(session)
        user = await repos.users.add(
            username, password_hash, now=now, roles=_roles(roles), profile=profile
        )
        await repos.audit.record(
            AuditEvent.USER_CREATED,
            at=now,
            actor=CLI_ACTOR,
            subject=str(user.id),
            detail={"username": user.username, "roles": list(user.roles)},
        )
    return user


async def _require(db: Database, username: str) -> User:
    async with db.read() as session:
        user = await Repositories(session).users.get_by_username(username)
    if user is None:
        raise UnknownUser(f"no user is named {username!r}")
    return user


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
    password = read_new_password()
    profile = {k: v for k, v in (("name", name), ("email", email)) if v is not None}

    async def go() -> User:
        async with open_services(settings) as ctx:
            return await create_user(ctx, username, password, roles=roles, profile=profile)

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
        found: list[User] = []
        async with open_services(settings) as ctx, ctx.db.read() as session:
            repo = Repositories(session).users
            after: str | None = None
            while page := await repo.list(limit=500, after_username=after):
                found.extend(page)
                after = page[-1].username
        return found

    found = run_async(go)
    if as_json:
        echo_json([user_json(u) for u in found])
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
            user = await _require(ctx.db, username)
            now = _now(ctx)
            async with ctx.db.transaction() as session:
                repos = Repositories(session)
                changed = await repos.users.set_roles(user.id, _roles(roles), now=now)
                await repos.audit.record(
                    AuditEvent.USER_CHANGED,
                    at=now,
                    actor=CLI_ACTOR,
                    subject=str(user.id),
                    detail={
                        "username": user.username,
                        "change": "roles",
                        "roles": list(changed.roles),
                    },
                )
            return changed

    user = run_async(go)
    click.echo(f"user {user.username}: roles {_cell(user.roles)}")


@users.command("disable")
@click.argument("username")
@click.option(
    "--enable", is_flag=True, help="Enable the user again instead (tokens revoked stay revoked)."
)
@config_option
def disable(username: str, enable: bool, config_path: Path | None) -> None:
    """Disable USERNAME: no login, no refresh; every token issued to it is revoked."""
    settings = load(config_path)

    async def go() -> tuple[User, int]:
        async with open_services(settings) as ctx:
            user = await _require(ctx.db, username)
            now = _now(ctx)
            async with ctx.db.transaction() as session:
                repos = Repositories(session)
                changed = await repos.users.set_disabled(user.id, not enable, now=now)
                await repos.audit.record(
                    AuditEvent.USER_CHANGED,
                    at=now,
                    actor=CLI_ACTOR,
                    subject=str(user.id),
                    detail={
                        "username": user.username,
                        "change": "enabled" if enable else "disabled",
                    },
                )
            revoked = 0
            if not enable:
                # A disabled account must not keep working until its access tokens expire.
                revoked = await ctx.tokens.revoke_all_for_user(user.id, actor=CLI_ACTOR)
            return changed, revoked

    user, revoked = run_async(go)
    if enable:
        click.echo(f"user {user.username}: enabled")
    else:
        click.echo(f"user {user.username}: disabled; its tokens are revoked ({revoked} access)")


@users.command("passwd")
@click.argument("username")
@config_option
def passwd(username: str, config_path: Path | None) -> None:
    """Set USERNAME's password (read from the terminal or stdin)."""
    settings = load(config_path)

    async def go() -> User:
        async with open_services(settings) as ctx:
            user = await _require(ctx.db, username)
            password = read_new_password("New password")
            password_hash = await ctx.passwords.hash_async(password)
            now = _now(ctx)
            async with ctx.db.transaction() as session:
                repos = Repositories(session)
                changed = await repos.users.set_password_hash(user.id, password_hash, now=now)
                await repos.audit.record(
                    AuditEvent.USER_CHANGED,
                    at=now,
                    actor=CLI_ACTOR,
                    subject=str(user.id),
                    detail={"username": user.username, "change": "password"},
                )
            return changed

    user = run_async(go)
    click.echo(f"user {user.username}: password changed")
