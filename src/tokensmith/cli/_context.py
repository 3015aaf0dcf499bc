"""Shared wiring of the operator commands: settings, the event loop, the server's services.

Every command that touches the server's state loads the settings once with
``load_settings(os.environ, --config)`` (this is the edge: the only place that reads
the environment), then opens the same wiring the HTTP server uses,
``tokensmith.server.app.build_services``, so the CLI and the server never disagree
on how the database, the master key and the key ring are put together.

Only ``init`` and ``serve`` set up a data directory that is not there
(``open_services(settings, create=True)``); the other commands refuse one without its
master key file, so a mistyped ``TOKENSMITH_DATA`` is an error, not a new deployment.
Only they maintain the key ring on opening, too (first keys, scheduled activation,
retirement and deletion) and record the token retention: their settings are the
deployment's. The others may run with other settings than the server's (no
``--config``, other algorithms or lifetimes) and change no key by opening the services;
the key commands change keys only as asked (``keys prune`` runs ``maintain`` itself).
That is the CLI's policy; the server's own rules apply below it, for every way of
starting the server: no new master key beside an existing database
(``MissingKeyFile``, from ``load_or_create_master_key``) and no schema the code does not
know (``UnknownSchemaRevision``, from the store's ``upgrade``).

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
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import click
from sqlalchemy.engine import make_url

from tokensmith.server.services import (
    MasterKeyFileError,
    check_key_file_not_lost,
    check_new_password,
    path_missing,
)
from tokensmith.server.settings import Settings, load_settings
from tokensmith.store import StoreError, check_driver, sqlite_file

if TYPE_CHECKING:
    from tokensmith.server.app import ServerContext

__all__ = [
    "CLI_ACTOR",
    "NotInitialized",
    "check_initialized",
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


def check_initialized(settings: Settings) -> None:
    """Refuse a data directory without its master key file (``NotInitialized``), or, with
    ``TOKENSMITH_MASTER_KEY`` set (no file), without its SQLite database.

    ``build_services`` creates the key file when it is missing: right for ``init`` and a
    first ``serve``, wrong for a data directory someone mistyped. A key file missing
    beside an existing database is not that: it is lost, and ``MissingKeyFile`` says so
    (the rule of ``load_or_create_master_key``, which refuses to make a key there).
    """
    if settings.master_key is not None:
        # TOKENSMITH_MASTER_KEY: no key file to look for; the database is what init made.
        url = settings.resolved_database_url()
        database = sqlite_file(url)
        if database is not None and path_missing(database):
            check_driver(make_url(url))  # a URL the store cannot use is that, first
            raise NotInitialized(
                f"no database at {database}: run `tokensmith init` first "
                "(or check TOKENSMITH_DATA and --config)"
            )
        return
    key_file = settings.master_key_file()
    if not path_missing(key_file):
        return  # its mode and content are checked (and reported) when it is read
    check_key_file_not_lost(settings)
    raise NotInitialized(
        f"no master key file at {key_file}: run `tokensmith init` first "
        "(or check TOKENSMITH_DATA and --config)"
    )


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    create: bool = False,
    maintain_keys: bool | Literal["first_start"] = False,
) -> AsyncIterator[ServerContext]:
    """The server's services over the configured database and key ring (``build_services``).

    ``create``: the data directory and its master key may be made (``init``, ``serve``);
    otherwise a missing key file is ``NotInitialized`` (``check_initialized``).
    ``maintain_keys`` (``build_services``): True only where the settings are the
    deployment's (``serve``); ``"first_start"`` for ``init`` (the first keys of a new
    deployment, nothing once a server has started); False for the rest, whose opening
    changes no key.
    ``build_services`` itself refuses a new key beside an existing database
    (``MissingKeyFile``) and a schema revision it does not know
    (``UnknownSchemaRevision``). The store raises ``DatabaseUnavailable`` for a database
    it cannot use; any other database error that escapes becomes a ``StoreError`` naming
    only its type, so the command prints ``error: CODE: message`` and never the driver's
    text (SQL, paths).
    """
    # Imported here so the offline commands (keygen, token) never load the web stack.
    from sqlalchemy.exc import SQLAlchemyError

    from tokensmith.server.app import build_services

    if not create:
        check_initialized(settings)
    try:
        async with build_services(settings, maintain_keys=maintain_keys) as context:
            yield context
    except SQLAlchemyError as exc:
        raise StoreError(f"the database refused the operation ({type(exc).__name__})") from exc


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
