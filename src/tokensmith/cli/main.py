"""The ``tokensmith`` entry point: errors become a code and a message, never a traceback."""

from __future__ import annotations

import sys

import click

from tokensmith import __version__
from tokensmith.errors import TokensmithError

from ._lazy import LazyGroup
from .demo import demo
from .keygen import keygen
from .token import token

__all__ = ["cli", "main", "run"]


# The server's operator commands are imported when used: keygen and token stay fast.
SERVER_COMMANDS = {
    name: f"tokensmith.cli.{name}:{name}"
    for name in ("init", "serve", "users", "clients", "keys", "audit")
}


@click.group(cls=LazyGroup, lazy_commands=SERVER_COMMANDS)
@click.version_option(__version__, prog_name="tokensmith")
def cli() -> None:
    """tokensmith: issue and verify JSON Web Tokens."""


cli.add_command(keygen)
cli.add_command(token)
cli.add_command(demo)


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="tokensmith", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except TokensmithError as exc:
        click.echo(f"error: {exc.code}: {exc.message}", err=True)
        return 1
    except (OSError, ValueError) as exc:
        # File problems and refused arguments: say what, without a traceback.
        click.echo(f"error: {exc}", err=True)
        return 1
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
