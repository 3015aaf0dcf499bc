"""`serve` hands the `access_log` setting to uvicorn (uvicorn itself is replaced here)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tokensmith.cli.main import cli


@pytest.fixture
def launched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    for name in [n for n in os.environ if n.startswith("TOKENSMITH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TOKENSMITH_DATA", str(tmp_path / "var"))
    monkeypatch.setenv("TOKENSMITH_SIGNING_ALGORITHMS", "ES256")
    monkeypatch.setenv("TOKENSMITH_WORKERS", "1")  # registered for undo: serve may set it
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    return calls


@pytest.mark.parametrize(
    ("value", "workers", "expected"),
    [(None, "1", True), ("false", "1", False), ("true", "2", True), ("false", "2", False)],
)
def test_access_log_reaches_uvicorn(
    launched: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
    workers: str,
    expected: bool,
) -> None:
    if value is not None:
        monkeypatch.setenv("TOKENSMITH_ACCESS_LOG", value)
    result = CliRunner().invoke(cli, ["serve", "--workers", workers])
    assert result.exit_code == 0, result.output
    [call] = launched
    assert call["access_log"] is expected
