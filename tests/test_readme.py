"""README.md stays true: the Quick start and the generated configuration table."""

from __future__ import annotations

import re
from pathlib import Path

from tokensmith.server.settings_doc import check_readme

README = Path(__file__).resolve().parents[1] / "README.md"


def test_configuration_table_matches_the_settings_model() -> None:
    assert check_readme(README), "run: python -m tokensmith.server.settings_doc --write README.md"


def test_quick_start_is_exactly_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make run", "make test"]
