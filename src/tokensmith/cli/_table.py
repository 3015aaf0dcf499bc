"""Tables and JSON output for the operator commands.

Tables are drawn by ``rich``, imported only when a table is printed: ``--help``,
``--json`` and the commands that print no table never load it. On a terminal the
header is bold and underlined by a rule. Anywhere else (a pipe, a file, the tests)
the table is plain ASCII for ``grep`` and ``awk``: no colour, a header, a rule of
dashes, one line per row, columns padded to their widest cell, no trailing spaces.

A cell is never wrapped or cut: a line is as long as its widest row (a narrow
terminal wraps it by itself), so a kid or a client id can be copied whole. Cells
are text, never rich markup (``[red]`` in a username prints as is), and control
characters are shown as escapes (``\\x1b``, ``\\n``) so a stored value can neither
rewrite the terminal nor break the layout.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["echo_json", "echo_table", "format_time", "render_table"]

#: Wider than any table: rich then never wraps or truncates a cell to fit.
_UNLIMITED_WIDTH = 1_000_000

#: rich's ``box.SIMPLE_HEAD`` in ASCII: only a rule of dashes under the header.
_ASCII_HEAD_RULE = "    \n    \n -  \n    \n    \n -  \n    \n    \n"


def format_time(seconds: int | None) -> str:
    """A Unix time as ``2026-11-23 02:16:39Z``; ``-`` for none."""
    if seconds is None:
        return "-"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value) or "-"
    # Usernames, profiles and audit details come from the database: escapes and
    # newlines are shown, not sent to the terminal.
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(value)
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, terminal: bool) -> Table:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        box=box.SIMPLE_HEAD if terminal else box.Box(_ASCII_HEAD_RULE, ascii=True),
        header_style="bold" if terminal else "",
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for header in headers:
        table.add_column(Text(header), no_wrap=True)
    for row in rows:
        # Text, not str: a value is never parsed as markup or emoji codes.
        table.add_row(*(Text(_cell(v)) for v in row))
    return table


def _write_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], file: IO[str], *, terminal: bool
) -> None:
    from rich.console import Console

    console = Console(
        file=file,
        width=_UNLIMITED_WIDTH,
        force_terminal=terminal,
        color_system="auto" if terminal else None,
        no_color=None if terminal else True,  # None: a terminal follows NO_COLOR
        markup=False,
        emoji=False,
        highlight=False,
    )
    console.print(_table(headers, rows, terminal=terminal))


def render_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, terminal: bool = False
) -> str:
    """The table as text: plain ASCII, or as drawn on a terminal (``terminal=True``)."""
    out = io.StringIO()
    _write_table(headers, rows, out, terminal=terminal)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str) -> None:
    """Print the table (styled on a terminal, plain otherwise), or ``empty`` when no rows."""
    if not rows:
        click.echo(empty)
    elif sys.stdout.isatty():
        _write_table(headers, rows, sys.stdout, terminal=True)
    else:
        click.echo(render_table(headers, rows))


def echo_json(value: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> None:
    """Machine-readable output: one JSON document, keys sorted, on stdout."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
