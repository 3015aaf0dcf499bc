"""``tokensmith init``: data directory, master key, database schema, first signing keys.

With ``--admin USER`` it also creates USER with role ADMIN and the public client
``tokensmith-admin`` (password and refresh_token grants, audience ``{issuer}/admin``)
through which an admin obtains a token for the admin API.

Idempotent: run again, it changes nothing that exists (the key file is never replaced,
the migration is a no-op at head, a ring with a current key gets no new key) and says so.
One exception: an admin client whose audience is not ``{issuer}/admin`` of the issuer
configured now (the issuer was changed since) is given that audience, since the admin API
takes no other, and ``init`` prints the change.
"""

from __future__ import annotations

from pathlib import Path

import click

from tokensmith.keys import KeyState
from tokensmith.server.services import ADMIN_ROLE, admin_audience
from tokensmith.store import Client, Repositories, User, current_revision, is_sqlite

from ._context import CLI_ACTOR, config_option, load, open_services, read_new_password, run_async

__all__ = ["ADMIN_CLIENT_ID", "init"]

#: The public client an admin logs in through to get a token for the admin API.
ADMIN_CLIENT_ID = "tokensmith-admin"


def _audiences(audiences: tuple[str, ...]) -> str:
    return ", ".join(audiences) or "none"


def _admin_client_line(client: Client, state: str, previous: tuple[str, ...] | None) -> str:
    """What ``init --admin`` says of the admin client: the audience as stored, and that it
    is disabled if it is (no admin can log in through it: `clients enable` it)."""
    if client.disabled:
        state += ", DISABLED (see `tokensmith clients enable`)"
    line = f"admin client {ADMIN_CLIENT_ID}: {state}"
    if previous is not None:
        return f"{line}, audience changed: {_audiences(previous)} -> {_audiences(client.audiences)}"
    return f"{line} (audience {_audiences(client.audiences)})"


def _existing_admin(user: User) -> str:
    """What a second ``init --admin`` says of the account it leaves alone.

    An account that cannot use the admin API (no role ADMIN, or disabled) must not be
    reported as the admin: the operator would believe there is one.
    """
    if ADMIN_ROLE in user.roles and not user.disabled:
        return f"admin user {user.username}: exists, left unchanged"
    roles = ",".join(user.roles) or "none"
    state = "disabled, " if user.disabled else ""
    return (
        f"user {user.username}: exists, left unchanged, and is NOT an admin ({state}roles "
        f"{roles}): see `tokensmith users set-roles` and `tokensmith users disable --enable`"
    )


@click.command()
@click.option(
    "--admin",
    "admin",
    default=None,
    metavar="USER",
    help="Also create USER with role ADMIN; the password is read from the terminal or stdin.",
)
@config_option
def init(admin: str | None, config_path: Path | None) -> None:
    """Prepare the data directory, master key, database and signing keys."""
    settings = load(config_path)
    data_dir = settings.data_dir
    made_dir = not data_dir.exists()
    if is_sqlite(settings.resolved_database_url()):
        # SQLite creates the file but not its directory. 0700: it holds the key file.
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    key_file = settings.master_key_file() if settings.master_key is None else None
    made_key = key_file is not None and not key_file.exists()

    async def setup() -> tuple[str | None, list[str], User | None, User | None, str | None]:
        async with open_services(settings, create=True, maintain_keys="first_start") as ctx:
            # build_services created what was missing: key file, schema, first keys.
            revision = await current_revision(ctx.db)
            signing = [
                f"{r.alg} {r.kid}" for r in ctx.keyring.records if r.state is KeyState.CURRENT
            ]
            user, found, client_line = None, None, None
            if admin is not None:
                async with ctx.db.read() as session:
                    repos = Repositories(session)
                    found = await repos.users.get_by_username(admin)
                    client = await repos.clients.get(ADMIN_CLIENT_ID)
                # Ask for a password only when the user is to be created: a second
                # `init --admin` leaves the existing account (and its password) alone.
                if found is None:
                    password = read_new_password(f"Password for {admin}")
                    user = await ctx.users.create(
                        admin, password, roles=[ADMIN_ROLE], actor=CLI_ACTOR
                    )
                audience = admin_audience(settings.issuer)
                if client is None:
                    created = await ctx.clients.create(
                        ADMIN_CLIENT_ID,
                        confidential=False,
                        grant_types=("password", "refresh_token"),
                        audiences=(audience,),
                        actor=CLI_ACTOR,
                    )
                    client_line = _admin_client_line(created.client, "created", None)
                elif client.audiences != (audience,):
                    # The issuer changed since the client was made: the admin API takes
                    # only tokens for {issuer}/admin, so the old audience locks admins out.
                    changed = await ctx.clients.set_audiences(
                        ADMIN_CLIENT_ID, (audience,), actor=CLI_ACTOR
                    )
                    client_line = _admin_client_line(changed, "exists", client.audiences)
                else:
                    client_line = _admin_client_line(client, "exists", None)
            return revision, signing, user, found, client_line

    revision, signing, user, found, client_line = run_async(setup)

    click.echo(f"data directory: {data_dir}" + (" (created)" if made_dir else ""))
    if key_file is None:
        click.echo("master key: from TOKENSMITH_MASTER_KEY")
    else:
        click.echo(f"master key: {key_file}" + (" (created, mode 0600)" if made_key else ""))
    click.echo(f"database: at revision {revision}")
    for line in signing:
        click.echo(f"signing key: {line}")
    if admin is not None:
        if user is not None:
            click.echo(f"admin user {user.username}: created with role ADMIN")
        elif found is not None:
            click.echo(_existing_admin(found))
        assert client_line is not None
        click.echo(client_line)
