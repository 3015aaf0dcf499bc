"""Shared wiring of the operator commands: settings, the event loop, the server's services.

Every command that touches the server's state loads the settings once with
``load_settings(os.environ, --config)`` (this is the edge: the only place that reads
the environment), then opens the same wiring the HTTP server uses,
``tokensmith.server.app.build_services``, so the CLI and the server never disagree
on how the database, the master key and the key ring are put together.

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

from tokensmith.server.services import check_new_password
from tokensmith.server.settings import Settings, load_settings

if TYPE_CHECKING:
    from tokensmith.server.app import ServerContext

__all__ = [
    "CLI_ACTOR",
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


@asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[ServerContext]:
    """The server's services over the configured database and key ring (``build_services``).

    The store raises ``DatabaseUnavailable`` for a database it cannot use; any other
    database error that escapes becomes a ``StoreError`` naming only its type, so the
    command prints ``error: CODE: message`` and never the driver's text (SQL, paths).
    """
    # Imported here so the offline commands (keygen, token) never load the web stack.
    from sqlalchemy.exc import SQLAlchemyError

    from tokensmith.server.app import build_services
    from tokensmith.store import StoreError

    try:
        async with build_services(settings) as context:
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
