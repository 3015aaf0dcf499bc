"""Shared wiring of the operator commands: settings, the event loop, the server's services.

Every command that touches the server's state loads the settings once with
``load_settings(os.environ, --config)`` (this is the edge: the only place that reads
the environment), then opens the same wiring the HTTP server uses,
``tokensmith.server.app.build_services``, so the CLI and the server never disagree
on how the database, the master key and the key ring are put together.

Only ``init`` and ``serve`` set up a data directory that is not there
(``open_services(settings, create=True)``); the other commands refuse one without its
master key file, so a mistyped ``TOKENSMITH_DATA`` is an error, not a new deployment.
No command makes a new master key beside an existing database: it could not unseal the
database's signing keys.

Passwords are read from the terminal (hidden, typed twice) or, when stdin is not a
terminal, from its first line; never from the command line, where other users can
read them in the process list and shells keep them in their history.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import click

from tokensmith.server.services import MasterKeyFileError, check_new_password
from tokensmith.server.settings import Settings, load_settings
from tokensmith.store import StoreError

if TYPE_CHECKING:
    from tokensmith.server.app import ServerContext

__all__ = [
    "CLI_ACTOR",
    "MissingKeyFile",
    "NotInitialized",
    "UnknownSchemaRevision",
    "config_option",
    "json_option",
    "load",
    "open_services",
    "read_new_password",
    "run_async",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

#: The ``actor`` of audit rows written by operator commands (the admin API names the user).
CLI_ACTOR = "cli"


class NotInitialized(MasterKeyFileError):
    """No master key file where the settings put it: ``tokensmith init`` has not run there."""

    code = "not_initialized"
    description = "The data directory has not been initialized."


class MissingKeyFile(MasterKeyFileError):
    """The database exists but its master key file does not (deleted, or not restored)."""

    code = "missing_key_file"
    description = "The master key file of the database is missing."


class UnknownSchemaRevision(StoreError):
    """The database's schema is at a revision this code does not know (a newer version's)."""

    code = "unknown_schema_revision"
    description = "The database schema is at a revision this version does not know."


def config_option(func: F) -> F:
    """``--config FILE``: the TOML settings file (default: ``$TOKENSMITH_CONFIG``, if set)."""
    return click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="TOML settings file (default: $TOKENSMITH_CONFIG). Environment variables win.",
    )(func)


def json_option(func: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table."
    )(func)


def load(config_path: Path | None) -> Settings:
    """The settings from the environment over the file; ``SettingsError`` names each bad one."""
    return load_settings(os.environ, config_path)


def run_async(func: Callable[[], Awaitable[T]]) -> T:
    """Run one async operation to completion on a fresh event loop."""

    async def main() -> T:
        return await func()

    return anyio.run(main)


def _sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file the settings name; None for another database or memory."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def _missing(path: Path) -> bool:
    """Whether ``path`` is known not to exist. A path that cannot be looked at (a data
    directory others may not search) is not missing: reading it reports the reason."""
    try:
        path.stat()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


def check_master_key_file(settings: Settings, *, create: bool) -> None:
    """Refuse to open services where ``build_services`` would make a master key it must not.

    It creates the key file when it is missing: right for ``init`` and a first ``serve``,
    wrong for a data directory someone mistyped (``NotInitialized``), and never beside an
    existing database, whose signing keys a new key cannot unseal (``MissingKeyFile``;
    the new file would also stand in the way of restoring the real one).
    """
    if settings.master_key is not None:
        return  # TOKENSMITH_MASTER_KEY: no file is read or made
    key_file = settings.master_key_file()
    if not _missing(key_file):
        return  # its mode and content are checked (and reported) when it is read
    database = _sqlite_file(settings)
    if database is not None and not _missing(database):
        raise MissingKeyFile(
            f"the master key file {key_file} is missing but the database {database} exists; "
            "restore the key file (a new key could not unseal the database's signing keys)"
        )
    if not create:
        raise NotInitialized(
            f"no master key file at {key_file}: run `tokensmith init` first "
            "(or check TOKENSMITH_DATA and --config)"
        )


@asynccontextmanager
async def open_services(
    settings: Settings, *, create: bool = False
) -> AsyncIterator[ServerContext]:
    """The server's services over the configured database and key ring (``build_services``).

    ``create``: the data directory and its master key may be made (``init``, ``serve``);
    otherwise a missing key file is ``NotInitialized`` (``check_master_key_file``).
    The store raises ``DatabaseUnavailable`` for a database it cannot use; any other
    database error that escapes becomes a ``StoreError`` naming only its type, so the
    command prints ``error: CODE: message`` and never the driver's text (SQL, paths).
    A schema revision the migrations do not know (a newer tokensmith wrote the
    database) is ``UnknownSchemaRevision``, where Alembic raised a traceback.
    """
    # Imported here so the offline commands (keygen, token) never load the web stack.
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from tokensmith.server.app import build_services
    from tokensmith.store import current_revision

    check_master_key_file(settings, create=create)
    try:
        async with build_services(settings) as context:
            yield context
    except SQLAlchemyError as exc:
        raise StoreError(f"the database refused the operation ({type(exc).__name__})") from exc
    except CommandError:
        # Alembic's text may quote the URL; the revision read again is safe to show.
        revision = await current_revision(settings.resolved_database_url())
        raise UnknownSchemaRevision(
            f"the database schema is at revision {revision!r}, which this version of "
            "tokensmith does not know (was it upgraded by a newer one?)"
        ) from None


def read_new_password(what: str = "Password") -> str:
    """A new password from the terminal (hidden, confirmed) or the first line of stdin.

    Checked with ``check_new_password`` (``WeakPassword`` names the rule, never the text).
    """
    stdin = sys.stdin
    if stdin.isatty():
        password = click.prompt(what, hide_input=True, confirmation_prompt=True, err=True)
    else:
        line = stdin.readline()
        if not line:
            raise click.UsageError(
                "no password on stdin: type it at a terminal or pipe it as the first line"
            )
        # Only the line ending is removed: spaces are part of a password.
        password = line.removesuffix("\n").removesuffix("\r")
    check_new_password(password)
    return str(password)
