"""Running the real ``tokensmith`` console script against a data directory in tmp_path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).with_name("tokensmith")
PASSWORD = "correct horse battery staple"


def parse_table(text: str) -> list[dict[str, str]]:
    """A plain table as one dict per row, keyed by header.

    The rule of dashes under the header gives each column's extent, so headers and
    values with spaces in them ("DELETED AFTER", times) are read whole.
    """
    header, rule, *lines = text.rstrip("\n").split("\n")
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    headers = [header[a:b].strip() for a, b in spans]
    assert all(headers) and len(set(headers)) == len(headers), header
    return [
        dict(zip(headers, (line[a:b].strip() for a, b in spans), strict=True)) for line in lines
    ]


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The test process's environment without any TOKENSMITH_* setting, plus the data dir."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TOKENSMITH_")}
    env["TOKENSMITH_DATA"] = str(data_dir)
    env.update(extra)
    return env


class Cli:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.env = clean_env(data_dir)

    def run(
        self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(SCRIPT), *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env or self.env,
        )
        assert "Traceback" not in result.stderr, result.stderr
        assert "Traceback" not in result.stdout, result.stdout
        return result

    def ok(self, *args: str, stdin: str | None = None) -> str:
        result = self.run(*args, stdin=stdin)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))
