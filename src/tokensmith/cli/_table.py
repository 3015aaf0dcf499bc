"""Plain-text tables and JSON output for the operator commands.

``rich`` is not a dependency, so tables are aligned by hand: a header, a rule, one
line per row, columns padded to their widest cell. Cells are single-line text;
control characters are replaced so a stored value cannot rewrite the terminal.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import click

__all__ = ["echo_json", "echo_table", "format_time"]


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
    text = str(value)
    # Usernames and audit details come from the database: keep escapes and newlines
    # out of the terminal and out of the column layout.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str) -> None:
    """Print the table, or ``empty`` when there are no rows."""
    if not rows:
        click.echo(empty)
        return
    click.echo(render_table(headers, rows))


def echo_json(value: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> None:
    """Machine-readable output: one JSON document, keys sorted, on stdout."""
    click.echo(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
