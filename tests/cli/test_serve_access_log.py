"""`serve` and the `access_log` setting: the app writes the access log, not uvicorn.

uvicorn itself is replaced here; the lines themselves are tested in
tests/middleware/test_access_log.py and counted over a real server in tests/e2e.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tokensmith.cli.main import cli
from tokensmith.cli.serve import WORKER_APP, worker_app
from tokensmith.middleware.access_log import ACCESS_LOGGER, AccessLogMiddleware


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
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    return calls


@pytest.mark.parametrize(
    ("value", "workers", "expected"),
    [(None, "1", True), ("false", "1", False), ("true", "2", True), ("false", "2", False)],
)
def test_the_access_log_is_the_apps_and_reaches_every_worker(
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
    assert call["access_log"] is False  # uvicorn's own: ~100 us per request
    logger = call["log_config"]["loggers"][ACCESS_LOGGER]
    assert logger["level"] == "INFO" and logger["propagate"] is False
    if workers == "1":
        middleware = [m.cls for m in call["app"].user_middleware]
        assert (AccessLogMiddleware in middleware) is expected
    else:  # each worker builds its app from the environment, where the setting is
        assert call["app"] == WORKER_APP
        assert (AccessLogMiddleware in [m.cls for m in worker_app().user_middleware]) is expected


def test_the_access_log_follows_the_log_level(
    launched: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKENSMITH_LOG_LEVEL", "warning")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 0, result.output
    [call] = launched
    assert call["log_config"]["loggers"][ACCESS_LOGGER]["level"] == "WARNING"
    assert call["log_level"] == "warning"
