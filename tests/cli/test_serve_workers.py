"""`serve --workers N` tells the workers how many they are, so their throttle counters are
shared in the database (``throttle_store = "auto"``). uvicorn itself is replaced: what
matters is the environment the worker processes would inherit."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tokensmith.cli.main import cli
from tokensmith.cli.serve import HTTP_PROTOCOL, WORKER_APP
from tokensmith.server.settings import load_settings


@pytest.fixture
def launched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The arguments uvicorn.run got, with the environment at that moment."""
    import uvicorn

    for name in [n for n in os.environ if n.startswith("TOKENSMITH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TOKENSMITH_DATA", str(tmp_path / "var"))
    monkeypatch.setenv("TOKENSMITH_SIGNING_ALGORITHMS", "ES256")
    # Registered for undo: serve sets it in os.environ for its workers.
    monkeypatch.setenv("TOKENSMITH_WORKERS", "1")
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    calls: list[dict[str, Any]] = []

    def run(app: object, **kwargs: Any) -> None:
        calls.append({"app": app, "env": dict(os.environ), **kwargs})

    monkeypatch.setattr(uvicorn, "run", run)
    return calls


def test_workers_flag_reaches_the_workers_settings(launched: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli, ["serve", "--workers", "3"])
    assert result.exit_code == 0, result.output
    [call] = launched
    assert (call["app"], call["workers"]) == (WORKER_APP, 3)
    worker_settings = load_settings(call["env"])
    assert worker_settings.workers == 3
    assert worker_settings.resolved_throttle_store() == "database"


def test_one_process_keeps_counters_in_memory(launched: list[dict[str, Any]]) -> None:
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 0, result.output
    [call] = launched
    assert call["app"] != WORKER_APP
    assert load_settings(call["env"]).resolved_throttle_store() == "memory"


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_runs_the_coalescing_protocol(launched: list[dict[str, Any]], workers: str) -> None:
    from uvicorn.importer import import_from_string

    from tokensmith.server.http_protocol import CoalescingHttpToolsProtocol

    result = CliRunner().invoke(cli, ["serve", "--workers", workers])
    assert result.exit_code == 0, result.output
    [call] = launched
    assert call["http"] == HTTP_PROTOCOL
    assert import_from_string(call["http"]) is CoalescingHttpToolsProtocol
