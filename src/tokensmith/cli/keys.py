"""``tokensmith keys``: the signing key ring: list, rotate, retire, revoke, prune.

Every change goes through the server's ``KeyRing`` (plan from the rows under the write
lock, apply, audit in one transaction), exactly as the scheduled rotation does. A
running server sees the change at its next maintenance pass, when it reloads the ring.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from tokensmith.errors import TokensmithError
from tokensmith.keys import (
    Action,
    Activate,
    CreateKey,
    Delete,
    KeyRecord,
    Retire,
    Revoke,
    RotationPolicy,
    deletion_time,
)
from tokensmith.server.services import key_summary
from tokensmith.server.settings import env_name
from tokensmith.store import KeySettingsRepository

from ._context import CLI_ACTOR, config_option, json_option, load, open_services, run_async

if TYPE_CHECKING:
    from tokensmith.server.app import ServerContext  # the web stack loads only when used
from ._table import echo_json, echo_table, format_time

__all__ = ["KeySettingsDiffer", "keys"]


class KeySettingsDiffer(TokensmithError):
    """A key command planning with other key-ring settings than the server's."""

    code = "key_settings_differ"
    description = "This command's key-ring settings are not the ones the server started with."


async def check_key_settings(ctx: ServerContext) -> None:
    """Refuse to plan key changes with other settings than the server last started with.

    Planned from another algorithm list, a pass would wind down a ring the server signs
    with (which then makes a new key) or make keys it does not use; from a shorter
    pre-publication period, it would activate a key before verifiers' caches know it.
    Nothing recorded yet (no server has started since): nothing to compare.
    """
    from tokensmith.server.app import key_settings  # the web stack, only when used

    async with ctx.db.read() as session:
        stored = await KeySettingsRepository(session).stored()
    ours = key_settings(ctx.settings)
    if stored is None or stored == ours:
        return
    differences = []
    if ours.algorithms != stored.algorithms:
        differences.append(
            f"{env_name('signing_algorithms')} is {','.join(sorted(ours.algorithms))} here, "
            f"{','.join(sorted(stored.algorithms))} for the server"
        )
    for field, value, theirs in (
        ("key_prepublish", ours.prepublish, stored.prepublish),
        ("rotation_period", ours.rotation_period, stored.rotation_period),
    ):
        if value != theirs:
            differences.append(f"{env_name(field)} is {value} s here, {theirs} s for the server")
    raise KeySettingsDiffer(
        "; ".join(differences) + ": run key commands with the server's settings (--config)"
    )


def describe(action: Action) -> str:
    if isinstance(action, CreateKey):
        return f"created a new {action.alg} key ({action.state.value})"
    verbs = {Activate: "activated", Retire: "retired", Revoke: "revoked", Delete: "deleted"}
    assert isinstance(action, Activate | Retire | Revoke | Delete)
    return f"{verbs[type(action)]} {action.kid}"


def _echo_actions(actions: Sequence[Action], nothing: str) -> None:
    if not actions:
        click.echo(nothing)
    for action in actions:
        click.echo(describe(action))


@click.group()
def keys() -> None:
    """Manage the signing key ring (private keys never leave the database)."""


@keys.command("list")
@json_option
@config_option
def list_keys(as_json: bool, config_path: Path | None) -> None:
    """List the signing keys and their states (public metadata only)."""
    settings = load(config_path)

    async def go() -> tuple[tuple[KeyRecord, ...], RotationPolicy]:
        async with open_services(settings) as ctx:
            await ctx.keyring.reload(ctx.db)
            # The ring's policy, keep_until included (read from the database on load).
            return ctx.keyring.records, ctx.keyring.policy

    records, policy = run_async(go)
    if as_json:
        echo_json([key_summary(r, policy) for r in records])
        return
    rows = [
        (
            r.kid,
            r.alg,
            r.state.value,
            format_time(r.created_at),
            format_time(r.activated_at),
            # A key retired and then revoked has both: the revocation is what ended it.
            format_time(r.revoked_at if r.revoked_at is not None else r.retired_at),
            format_time(deletion_time(r, policy)),
        )
        for r in records
    ]
    headers = ("KID", "ALG", "STATE", "CREATED", "ACTIVATED", "RETIRED/REVOKED", "DELETED AFTER")
    echo_table(headers, rows, empty="no keys (run `tokensmith init`)")


@keys.command("rotate")
@click.option("--alg", default=None, help="The ring to rotate (default: the first configured).")
@click.option(
    "--force",
    is_flag=True,
    help="Switch signing now even if the next key was published too recently for "
    "verifiers' caches to know it (the compromise path).",
)
@config_option
def rotate(alg: str | None, force: bool, config_path: Path | None) -> None:
    """Rotate a ring: the next key takes over, or a next key is published first.

    Without --force, a next key that has been published long enough starts signing;
    a younger one is refused (rotation_too_early, with the seconds left); with no next
    key, one is created and published and takes over after the pre-publication period.
    """
    settings = load(config_path)

    async def go() -> list[Action]:
        async with open_services(settings) as ctx:
            await check_key_settings(ctx)
            ring = ctx.keyring
            return await ring.rotate(ctx.db, alg or ring.default_alg, force=force, actor=CLI_ACTOR)

    _echo_actions(run_async(go), "nothing to do")


@keys.command("retire")
@click.argument("kid")
@config_option
def retire(kid: str, config_path: Path | None) -> None:
    """Retire KID, the current key of its ring, now.

    The ring's next key signs at once (or a new key does): this is `keys rotate
    --alg ALG --force` for KID's ring. KID stays published, verifying only, until
    every token it signed has expired. To stop its tokens verifying, use `keys revoke`.
    """
    settings = load(config_path)

    async def go() -> list[Action]:
        async with open_services(settings) as ctx:
            return await ctx.keyring.retire(ctx.db, kid, actor=CLI_ACTOR)

    _echo_actions(run_async(go), "nothing to do")


@keys.command("revoke")
@click.argument("kid")
@click.confirmation_option(
    "--yes",
    prompt="Revoke the key? Tokens it signed stop verifying at once.",
    help="Do not ask for confirmation.",
)
@config_option
def revoke(kid: str, config_path: Path | None) -> None:
    """Revoke KID (compromised): unpublished at once, its tokens stop verifying.

    Revoking the current key hands signing to the next key, or to a new one.
    """
    settings = load(config_path)

    async def go() -> list[Action]:
        async with open_services(settings) as ctx:
            return await ctx.keyring.revoke(ctx.db, kid, actor=CLI_ACTOR)

    _echo_actions(run_async(go), "nothing to do")


@keys.command("prune")
@config_option
def prune_now(config_path: Path | None) -> None:
    """Run the housekeeping now: due key changes and expired rows.

    The key changes are those of the server's scheduled pass, when due: a next key
    created and published ahead of a rotation; activated, the current key retired,
    once published for TOKENSMITH_KEY_PREPUBLISH; the ring of an algorithm no longer
    configured wound down; retired and revoked keys deleted after their retention.
    The expired rows: refresh tokens, revocations and login-failure counters, and
    audit entries past TOKENSMITH_AUDIT_RETENTION.
    """
    settings = load(config_path)

    async def go() -> list[Action]:
        from tokensmith.server.app import prune_once

        async with open_services(settings) as ctx:
            # The pass the server runs every minute, planned from these settings:
            # opening the services changed no key (only init and serve maintain).
            await check_key_settings(ctx)
            actions = await ctx.keyring.maintain(ctx.db, actor=CLI_ACTOR)
            await prune_once(ctx)
            return actions

    _echo_actions(run_async(go), "key ring: nothing due")
    click.echo("expired refresh tokens, revocations and old audit entries pruned")
