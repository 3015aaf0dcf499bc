"""The configuration table, rendered from the settings model so the docs cannot drift.

    python -m tokensmith.server.settings_doc                  # print the table
    python -m tokensmith.server.settings_doc --write FILE...  # refresh it between the markers
    python -m tokensmith.server.settings_doc --check FILE...  # exit 1 if a file is stale

A file carries the table between ``<!-- settings-table:start -->`` and
``<!-- settings-table:end -->`` (docs/configuration.md does, and README.md will);
tests compare that block with ``settings_table()``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo

from .settings_checks import Duration, format_duration
from .settings_model import Settings, env_name

__all__ = [
    "END_MARKER",
    "START_MARKER",
    "check_readme",
    "extract_table",
    "replace_table",
    "settings_table",
]

START_MARKER = "<!-- settings-table:start -->"
END_MARKER = "<!-- settings-table:end -->"
_HEADER = (
    "| Setting | Environment variable | Type | Default | Description |\n"
    "| --- | --- | --- | --- | --- |"
)


def settings_table() -> str:
    """One Markdown row per setting: TOML key, variable, type and range, default, meaning."""
    rows = [_HEADER]
    for name, field in Settings.model_fields.items():
        cells = (
            f"`{name}`",
            f"`{env_name(name)}`",
            _type_text(field),
            _default_text(field),
            _cell(field.description or ""),
        )
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def extract_table(text: str) -> str | None:
    """The text between the markers, or None when they are missing or out of order."""
    start = text.find(START_MARKER)
    end = text.find(END_MARKER)
    if start < 0 or end < start:
        return None
    return text[start + len(START_MARKER) : end].strip("\n") + "\n"


def replace_table(text: str) -> str:
    """``text`` with the block between the markers replaced by the current table."""
    start = text.find(START_MARKER)
    end = text.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"the markers {START_MARKER} ... {END_MARKER} are missing")
    head = text[: start + len(START_MARKER)]
    return f"{head}\n{settings_table()}{text[end:]}"


def check_readme(path: Path) -> bool:
    """True when ``path`` holds the current table between the markers (README.md or a doc)."""
    block = extract_table(path.read_text(encoding="utf-8"))
    return block is not None and block == settings_table()


def _type_text(field: FieldInfo) -> str:
    for meta in field.metadata:
        if isinstance(meta, Duration):
            low, high = format_duration(meta.minimum), format_duration(meta.maximum)
            return f"duration, {low}..{high}"
    annotation: Any = field.annotation
    if SecretStr in get_args(annotation) or annotation is SecretStr:
        return "secret"
    if annotation is bool:
        return "boolean"
    if annotation is int:
        ge = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
        le = next((m.le for m in field.metadata if hasattr(m, "le")), None)
        return f"integer, {ge}..{le}" if ge is not None and le is not None else "integer"
    if annotation is Path:
        return "path"
    if get_origin(annotation) is tuple:
        item = get_args(annotation)[0]
        if item is str:
            return "list of strings"
        return "list of " + ", ".join(get_args(item))
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(get_args(annotation))
    return "string"


def _default_text(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("default_text"), str):
        return str(extra["default_text"])  # written as Markdown by the model
    default = field.default
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if any(isinstance(meta, Duration) for meta in field.metadata):
        return f"`{format_duration(default)}`"
    if isinstance(default, tuple):
        return f"`{','.join(default)}`"
    return f"`{default}`"


def _cell(text: str) -> str:
    # A pipe would end the cell; a newline would end the row.
    return " ".join(text.split()).replace("|", "\\|")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        sys.stdout.write(settings_table())
        return 0
    mode, paths = args[0], [Path(arg) for arg in args[1:]]
    if mode not in ("--write", "--check") or not paths:
        sys.stderr.write("usage: settings_doc [--write FILE... | --check FILE...]\n")
        return 2
    failed = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if extract_table(text) is None:
            failed.append(f"{path} (no {START_MARKER} ... {END_MARKER} markers)")
        elif mode == "--write":
            path.write_text(replace_table(text), encoding="utf-8")
        elif not check_readme(path):
            failed.append(f"{path} (stale: run with --write)")
    for line in failed:
        sys.stderr.write(f"settings table: {line}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
