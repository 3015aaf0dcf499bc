"""``make run``'s first-run setup is all or nothing, and Ctrl-C never prints a traceback.

An interrupted setup used to leave ``var/`` with a master key, a database and an admin
whose password was never shown; the next ``make run`` then refused it as "a token server
the demo did not set up". ``prepare`` now builds a temporary sibling and renames it into
place at the end; ``examples/run.py`` turns Ctrl-C at any point into a clean exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cli._server_cli import Cli

from .helpers import free_port

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import examples.system as system  # noqa: E402

ISSUER, APP = "http://127.0.0.1:9", "http://127.0.0.1:10"
# examples/run.py on free ports (its own are fixed at 8000 and 8001).
RUNNER = (
    "import sys; import examples.run as run; "
    "run.TOKEN_PORT, run.APP_PORT = int(sys.argv[1]), int(sys.argv[2]); run.main()"
)


def leftovers(data_dir: Path) -> list[str]:
    """What the data directory's parent holds besides what the test put there."""
    return sorted(p.name for p in data_dir.parent.iterdir())


def fail_at_call(number: int, error: BaseException) -> Callable[..., str]:
    """``_cli`` that runs the real commands, then raises ``error`` instead of call ``number``."""
    real, calls = system._cli, []

    def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
        calls.append(args)
        if len(calls) == number:
            raise error
        return real(env, *args, stdin=stdin)

    return cli


@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), RuntimeError("tokensmith clients failed")], ids=type
)
def test_an_unfinished_first_run_keeps_nothing_and_the_next_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    data_dir = tmp_path / "var"
    # The third command: init and john are done, the admin exists, no password was shown.
    monkeypatch.setattr(system, "_cli", fail_at_call(3, error))
    with pytest.raises(type(error)):
        system.prepare(data_dir, ISSUER, APP)
    assert leftovers(data_dir) == []
    monkeypatch.undo()

    demo = system.prepare(data_dir, ISSUER, APP)
    assert demo.data_dir == str(data_dir)
    saved = json.loads((data_dir / system.CREDENTIALS_FILE).read_text(encoding="utf-8"))
    assert saved["data_dir"] == str(data_dir) and saved["john_password"] == demo.john_password
    assert leftovers(data_dir) == ["var"]
    assert oct((data_dir).stat().st_mode & 0o777) == "0o700"
    # Renamed into place, the directory works: nothing in it remembers where it was made.
    users = Cli(data_dir).json("users", "list")
    assert sorted(u["username"] for u in users) == ["admin", "john"]
    assert system.prepare(data_dir, ISSUER, APP) == demo  # later runs reuse it


def test_an_empty_data_directory_is_set_up(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    demo = system.prepare(data_dir, ISSUER, APP)
    assert (data_dir / system.CREDENTIALS_FILE).is_file()
    assert demo.data_dir == str(data_dir)
    assert leftovers(data_dir) == ["var"]


class Demo:
    """``examples/run.py`` as ``make run`` starts it, its output collected as it comes.

    In a session of its own, so whatever it leaves running (servers, a command) is
    killed with its process group when the block ends.
    """

    def __init__(self, data_dir: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TOKENSMITH_", "APP_"))}
        env.update(TOKENSMITH_DATA=str(data_dir), PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(free_port()), str(free_port())],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc_info: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.communicate()

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C (to the demo only: it must stop its children itself), then its exit."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_ctrl_c_during_setup_then_a_full_run(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    with Demo(data_dir) as demo:
        # Interrupted once the database exists: init has run, the users are being added.
        wait_for(lambda: any(tmp_path.glob("*var*/tokensmith.db")))
        code, out, err = demo.interrupt()
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in out + err
    assert code == 130, err
    assert err.strip() == "interrupted"
    assert leftovers(data_dir) == []

    # The next run sets up from scratch, serves, and stops on Ctrl-C with exit 0.
    with Demo(data_dir) as demo:
        assert demo.proc.stdout is not None
        lines = []
        for line in demo.proc.stdout:
            lines.append(line)
            if "Ctrl-C stops both servers" in line:
                break
        assert "passwords shown this once" in "".join(lines), "".join(lines)
        code, out, err = demo.interrupt()
    assert code == 0, err
    assert "stopping both servers" in out
    assert "Traceback" not in out + err
    assert (data_dir / system.CREDENTIALS_FILE).is_file()
