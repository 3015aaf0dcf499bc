"""The configuration table is generated from the model, and the docs carry the current one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokensmith.server.settings import Settings, env_name, format_duration
from tokensmith.server.settings_doc import (
    END_MARKER,
    START_MARKER,
    check_readme,
    extract_table,
    main,
    replace_table,
    settings_table,
)

ROOT = Path(__file__).resolve().parents[2]


def rows() -> dict[str, list[str]]:
    """The table's body rows by setting name, as lists of cells."""
    lines = settings_table().splitlines()[2:]
    cells = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    return {row[0].strip("`"): row for row in cells}


def test_the_table_lists_every_setting_once_with_its_variable() -> None:
    table = rows()
    assert list(table) == list(Settings.model_fields)
    for name, info in Settings.model_fields.items():
        _, variable, _, _, description = table[name]
        assert variable == f"`{env_name(name)}`"
        assert description == " ".join((info.description or "").split())


def test_the_table_shows_the_model_defaults_and_ranges() -> None:
    table = rows()
    assert table["rotation_period"][2:4] == [
        "duration, 1h..366d",
        f"`{format_duration(30 * 86400)}`",
    ]
    assert table["port"][2:4] == ["integer, 1..65535", "`8000`"]
    assert table["signing_algorithms"][2:4] == ["list of RS256, ES256, EdDSA, HS256", "`RS256`"]
    assert table["master_key"][2] == "secret"
    assert table["hs256_secret"][3] == "unset"
    assert table["allow_insecure_issuer"][3] == "`false`"
    assert table["data_dir"][1] == "`TOKENSMITH_DATA`"


def test_docs_configuration_carries_the_current_table() -> None:
    # Regenerate with: python -m tokensmith.server.settings_doc --write docs/configuration.md
    assert check_readme(ROOT / "docs" / "configuration.md")


def test_check_readme_refuses_a_stale_or_missing_table(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text("# Title\n\nno table here\n", encoding="utf-8")
    assert not check_readme(doc)
    current = f"intro\n{START_MARKER}\n{settings_table()}{END_MARKER}\noutro\n"
    doc.write_text(current, encoding="utf-8")
    assert check_readme(doc)
    doc.write_text(current.replace("`8000`", "`8080`"), encoding="utf-8")
    assert not check_readme(doc)


def test_replace_table_keeps_the_text_around_the_markers() -> None:
    stale = f"before\n{START_MARKER}\n| old |\n{END_MARKER}\nafter\n"
    fresh = replace_table(stale)
    assert fresh.startswith(f"before\n{START_MARKER}\n")
    assert fresh.endswith(f"{END_MARKER}\nafter\n")
    assert extract_table(fresh) == settings_table()
    assert replace_table(fresh) == fresh


@pytest.mark.parametrize(
    "text", ["no markers", f"{END_MARKER}\n{START_MARKER}", f"{START_MARKER} only"]
)
def test_missing_or_misordered_markers(text: str) -> None:
    assert extract_table(text) is None
    with pytest.raises(ValueError, match="markers"):
        replace_table(text)


def test_the_script_writes_then_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "configuration.md"
    doc.write_text(f"{START_MARKER}\n{END_MARKER}\n", encoding="utf-8")
    assert main(["--check", str(doc)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["--write", str(doc)]) == 0
    assert main(["--check", str(doc)]) == 0
    bare = tmp_path / "bare.md"
    bare.write_text("nothing\n", encoding="utf-8")
    assert main(["--write", str(bare)]) == 1
    assert "markers" in capsys.readouterr().err
    assert bare.read_text(encoding="utf-8") == "nothing\n"
    assert main([]) == 0
    assert capsys.readouterr().out == settings_table()
    assert main(["--bogus"]) == 2
