"""Tables drawn by rich: plain for pipes, styled on a terminal, never markup, never raw escapes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tokensmith.cli._table import render_table

from ._server_cli import parse_table

HEADERS = ("KID", "USERNAME", "NAME", "CREATED")
LONG_KID = "-1FTHvtQ_" * 12  # longer than any terminal is wide
MARKUP = "[red]mallory[/red] [link=https://evil.example]x[/link] :smile:"
HOSTILE = "\x1b[2J\x1b]0;pwned\x07Mal\r\nlory\u202e"
HOSTILE_SHOWN = "\\x1b[2J\\x1b]0;pwned\\x07Mal\\r\\nlory\\u202e"
ROWS = [
    (LONG_KID, "root", None, "2026-11-23 02:16:39Z"),
    ("k2", MARKUP, HOSTILE, "2026-11-24 10:00:00Z"),
    ("k3", "bob", ["A", "B"], "2026-11-25 23:59:59Z"),
]


def test_plain_table_is_ascii_aligned_and_keeps_every_value_whole() -> None:
    text = render_table(HEADERS, ROWS)
    assert text.isascii()  # no box drawing, no ellipsis
    assert "\x1b" not in text
    lines = text.split("\n")
    assert len(lines) == 2 + len(ROWS)  # header, rule, one line per row
    assert lines[0].split() == list(HEADERS)
    assert set(lines[1]) == {"-", " "}
    assert [line.split()[0] for line in lines[2:]] == [LONG_KID, "k2", "k3"]
    assert lines[2].split() == [LONG_KID, "root", "-", "2026-11-23", "02:16:39Z"]
    assert lines[4].split() == ["k3", "bob", "A,B", "2026-11-25", "23:59:59Z"]
    # Columns start at the same place on every line; cells are two spaces apart.
    start = lines[0].index("USERNAME")
    assert start == len(LONG_KID) + 2
    assert all(line[start - 2 : start] == "  " for line in lines[2:])
    assert [line[start:].split()[0] for line in lines[2:]] == ["root", "[red]mallory[/red]", "bob"]
    assert all(line == line.rstrip() for line in lines)
    assert parse_table(text) == [
        dict(zip(HEADERS, cells, strict=True))
        for cells in [
            (LONG_KID, "root", "-", "2026-11-23 02:16:39Z"),
            ("k2", MARKUP, HOSTILE_SHOWN, "2026-11-24 10:00:00Z"),
            ("k3", "bob", "A,B", "2026-11-25 23:59:59Z"),
        ]
    ]


@pytest.mark.parametrize("terminal", [False, True], ids=["plain", "terminal"])
def test_values_are_never_markup(terminal: bool) -> None:
    text = render_table(HEADERS, ROWS, terminal=terminal)
    assert MARKUP in text
    assert "\x1b]8;" not in text  # no hyperlink was made


@pytest.mark.parametrize("terminal", [False, True], ids=["plain", "terminal"])
def test_control_characters_are_shown_escaped_not_sent(terminal: bool) -> None:
    text = render_table(HEADERS, ROWS, terminal=terminal)
    assert HOSTILE_SHOWN in text
    for raw in ("\x1b[2J", "\x1b]0;", "\x07", "\r", "\u202e"):
        assert raw not in text
    assert len(text.split("\n")) == 2 + len(ROWS)  # a newline in a value adds no line


def test_terminal_table_is_styled_and_still_whole() -> None:
    text = render_table(HEADERS, ROWS, terminal=True)
    assert "\x1b[1m" in text  # bold headers: this is the terminal rendering
    assert LONG_KID in text  # not wrapped or cut to a terminal width
    assert "…" not in text


def test_rich_is_not_imported_for_help() -> None:
    code = (
        "import sys\n"
        "from tokensmith.cli.main import main\n"
        "import tokensmith.cli._table\n"
        "assert main(['--help']) == 0\n"
        "assert main(['keys', '--help']) == 0\n"
        "print('rich' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "False"
