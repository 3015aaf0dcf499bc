"""README.md stays true: the Quick start and the generated configuration table."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from tokensmith.server.settings_doc import check_readme
from tokensmith.verify import VerifierConfig

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
EXAMPLES = ROOT / "examples"


def test_configuration_table_matches_the_settings_model() -> None:
    assert check_readme(README), "run: python -m tokensmith.server.settings_doc --write README.md"


def test_quick_start_is_exactly_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make run", "make test"]


def _table_names(heading: str) -> set[str]:
    """The backquoted names in the first column of the table under ``### heading``."""
    text = README.read_text(encoding="utf-8")
    section = text.split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]
    body = section.split("| --- |", 1)[1]  # below the header row
    rows = [line for line in body.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_verifier_table_names_every_config_field() -> None:
    fields = {f.name for f in dataclasses.fields(VerifierConfig)}
    assert _table_names("Verifier SDK") == fields


def test_application_server_table_names_every_variable_the_examples_read() -> None:
    read: set[str] = set()
    for path in EXAMPLES.rglob("*.py"):
        read |= set(re.findall(r'"(APP_[A-Z_]+)"', path.read_text(encoding="utf-8")))
    assert read, "the examples read no APP_ variable: the pattern is stale"
    assert _table_names("Application servers") == read
