"""``tokensmith init``: data directory, master key, database schema, first signing keys.

Idempotent: run again, it changes nothing that exists (the key file is never replaced,
the migration is a no-op at head, a ring with a current key gets no new key) and says so.
"""

from __future__ import annotations

from pathlib import Path

import click

from tokensmith.keys import KeyState
from tokensmith.store import Repositories, User, current_revision, is_sqlite

from ._context import config_option, load, open_services, read_new_password, run_async
from .users import create_user

__all__ = ["init"]


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

    async def setup() -> tuple[str | None, list[str], User | None]:
        async with open_services(settings) as ctx:
            # build_services created what was missing: key file, schema, first keys.
            revision = await current_revision(ctx.db)
            signing = [
                f"{r.alg} {r.kid}" for r in ctx.keyring.records if r.state is KeyState.CURRENT
            ]
            user = None
            if admin is not None:
                async with ctx.db.read() as session:
                    found = await Repositories(session).users.get_by_username(admin)
                # Ask for a password only when the user is to be created: a second
                # `init --admin` leaves the existing account (and its password) alone.
                if found is None:
                    password = read_new_password(f"Password for {admin}")
                    user = await create_user(ctx, admin, password, roles=["ADMIN"])
            return revision, signing, user

    revision, signing, user = run_async(setup)

    click.echo(f"data directory: {data_dir}" + (" (created)" if made_dir else ""))
    if key_file is None:
        click.echo("master key: from TOKENSMITH_MASTER_KEY")
    else:
        click.echo(f"master key: {key_file}" + (" (created, mode 0600)" if made_key else ""))
    click.echo(f"database: at revision {revision}")
    for line in signing:
        click.echo(f"signing key: {line}")
    if admin is not None:
        if user is None:
            click.echo(f"admin user {admin}: exists, left unchanged")
        else:
            click.echo(f"admin user {user.username}: created with role ADMIN")
