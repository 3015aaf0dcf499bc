"""What the CLI reads and how it says no: bounded token input, ``audit --since`` numbers,
the ``keys list`` times of a revoked key, help and docs that match the code, and one
quoting of option names in usage errors.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import resource
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import IO, Any

import click
import pytest
from click.testing import CliRunner

from tokensmith.cli._table import format_time
from tokensmith.cli.audit import parse_since
from tokensmith.cli.main import cli
from tokensmith.cli.token import sign as sign_command
from tokensmith.errors import TokenTooLarge
from tokensmith.jose import DEFAULT_MAX_TOKEN_BYTES

from ._server_cli import SCRIPT, Cli, parse_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
TOO_LARGE = "error: token_too_large: The token is larger than the configured maximum.\n"
#: Far more than the CLI may read for one token (8 KiB and a little whitespace).
READ_BUDGET = 1024 * 1024


def _limit_memory() -> None:
    # Should the input be read whole after all, fail with MemoryError, not take the machine.
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))


def run(
    *args: str, stdin: IO[bytes] | None = None, timeout: float = 60, limit_memory: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args],
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=_limit_memory if limit_memory else None,
    )


@pytest.fixture(scope="module")
def es_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("keys")
    result = run("keygen", "--alg", "ES256", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("inputs") / "var")
    runner.ok("init")
    return runner


# -- 1. token input is read no further than just past the 8 KiB limit ------------------


class EndlessInput(io.RawIOBase):
    """A stream that never ends (as /dev/zero), counting what is read from it.

    Past READ_BUDGET it raises instead of going on, so code that reads until the end
    fails the test at once rather than hanging it.
    """

    def __init__(self) -> None:
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.bytes_read >= READ_BUDGET:
            raise AssertionError(f"read past {READ_BUDGET} bytes of an endless input")
        size = min(len(buffer), READ_BUDGET - self.bytes_read)
        buffer[:size] = b"A" * size
        self.bytes_read += size
        return size


def _bytes_read_by_this_process() -> int:
    with open("/proc/self/io") as io_file:
        fields = dict(line.split(": ") for line in io_file.read().splitlines())
    return int(fields["rchar"])


def test_token_file_dev_zero_is_refused_without_reading_it_whole() -> None:
    result = run("token", "decode", "--token-file", "/dev/zero", timeout=30)
    assert (result.returncode, result.stderr, result.stdout) == (1, TOO_LARGE, "")


def test_token_from_stdin_dev_zero_is_refused_without_reading_it_whole(es_keys: Path) -> None:
    with open("/dev/zero", "rb") as zeros:
        result = run(
            "token", "verify", "--key", str(es_keys / "public.pem"), "--alg", "ES256", "-",
            stdin=zeros, timeout=30,
        )  # fmt: skip
    assert (result.returncode, result.stderr, result.stdout) == (1, TOO_LARGE, "")


def test_a_key_file_that_never_ends_is_refused_without_reading_it_whole(
    es_keys: Path, tmp_path: Path
) -> None:
    # `--key <(curl ...)` hands a remote JWKS over a pipe: a hostile one may never end.
    token = run("token", "sign", "--key", str(es_keys / "private.pem"), "--alg", "ES256").stdout
    result = run("token", "verify", "--key", "/dev/zero", "--alg", "ES256", token, timeout=30)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and "larger than 524288 bytes" in result.stderr
    padded = tmp_path / "padded.pem"  # a real key with room to spare still loads
    padded.write_bytes((es_keys / "public.pem").read_bytes() + b"\n" * 1000)
    ok = run("token", "verify", "--key", str(padded), "--alg", "ES256", token.strip())
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize("command", ["decode", "verify"])
def test_an_endless_stdin_is_read_only_just_past_the_limit(command: str, es_keys: Path) -> None:
    endless = EndlessInput()
    key_args = ["--key", str(es_keys / "public.pem"), "--alg", "ES256"]
    args = ["token", command, *(key_args if command == "verify" else []), "-"]
    result = CliRunner().invoke(cli, args, input=endless)
    assert isinstance(result.exception, TokenTooLarge), result.exception
    assert result.exit_code == 1
    # 8 KiB and the whitespace allowance, plus at most one read-ahead buffer.
    assert endless.bytes_read <= DEFAULT_MAX_TOKEN_BYTES + 64 + 1 + io.DEFAULT_BUFFER_SIZE


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
def test_a_huge_token_file_is_refused_after_reading_a_few_kib(tmp_path: Path) -> None:
    huge = tmp_path / "huge.jwt"
    size = 64 * 1024 * 1024
    with huge.open("wb") as file:
        file.write(b"eyJhbGciOiJFUzI1NiJ9." + b"A" * 4096)
        file.truncate(size)  # the rest: a sparse run of zeros, costing no disk
    before = _bytes_read_by_this_process()
    result = CliRunner().invoke(cli, ["token", "decode", "--token-file", str(huge)])
    read = _bytes_read_by_this_process() - before
    assert isinstance(result.exception, TokenTooLarge), result.exception
    assert read < size // 8, f"read {read} bytes of a {size}-byte file"
    # And through the console script, the documented error line.
    assert run("token", "decode", "--token-file", str(huge)).stderr == TOO_LARGE


def test_a_fifo_that_never_ends_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "token.fifo"
    os.mkfifo(fifo)
    written = 0
    finished = threading.Event()

    def feed() -> None:
        nonlocal written
        try:
            with open(fifo, "wb", buffering=0) as pipe:  # waits for the CLI to open it
                while written < READ_BUDGET:
                    written += pipe.write(b"A" * 4096)
                finished.wait(60)  # the write end stays open: the input never ends
        except BrokenPipeError:
            return  # the CLI closed its end: what the test wants

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        # No preexec_fn beside a thread; the feeder bounds what could be read anyway.
        result = run("token", "decode", "--token-file", str(fifo), timeout=20, limit_memory=False)
    finally:
        finished.set()
        feeder.join(10)
    assert (result.returncode, result.stderr) == (1, TOO_LARGE)
    assert written < READ_BUDGET


def _token_of_length(length: int) -> str:
    """A well-formed compact JWS of exactly ``length`` characters (decode checks no key)."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    header = b64(b'{"alg":"ES256","typ":"JWT"}')
    for pad in range(length):
        payload = b64(json.dumps({"sub": "someone", "pad": "x" * pad}).encode())
        left = length - len(header) - len(payload) - 2
        if left >= 4 and left % 4 != 1:  # a base64url length that exists
            return f"{header}.{payload}.{'A' * left}"
    raise AssertionError(length)


def test_the_limit_is_the_tokens_length_not_the_files(tmp_path: Path) -> None:
    at_limit = tmp_path / "at_limit.jwt"
    token = _token_of_length(DEFAULT_MAX_TOKEN_BYTES)
    assert len(token) == DEFAULT_MAX_TOKEN_BYTES
    at_limit.write_text(token + "\r\n\n")
    result = CliRunner().invoke(cli, ["token", "decode", "--token-file", str(at_limit)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["payload"]["sub"] == "someone"
    over = tmp_path / "over.jwt"
    over.write_text(_token_of_length(DEFAULT_MAX_TOKEN_BYTES + 1) + "\n")
    result = CliRunner().invoke(cli, ["token", "decode", "--token-file", str(over)])
    assert isinstance(result.exception, TokenTooLarge)
    result = CliRunner().invoke(cli, ["token", "decode", "-"], input=token + "\n")
    assert result.exit_code == 0, result.output


# -- 2. audit --since: a number without a unit is refused -------------------------------


NOW = 1_795_483_930


@pytest.mark.parametrize("text", ["1795483930", "90", "0", " 20261123 ", "9" * 5000])
def test_since_refuses_a_number_without_a_unit(text: str) -> None:
    with pytest.raises(click.BadParameter, match="a number needs a unit: @") as refused:
        parse_since(text, NOW)
    message = refused.value.format_message()
    assert len(message) < 200
    if len(text.strip()) < 20:
        assert f"@{text.strip()} for a Unix time, {text.strip()}s for seconds" in message


@pytest.mark.parametrize(
    ("text", "since"),
    [
        ("90s", NOW - 90),
        ("15m", NOW - 900),
        ("2h", NOW - 7200),
        ("7d", NOW - 7 * 86400),
        ("@1763863200", 1_763_863_200),
        ("2026-11-23T02:00:00Z", 1_795_399_200),
        ("2026-11-23T02:00:00", 1_795_399_200),
        ("2026-11-23T03:00:00+01:00", 1_795_399_200),
        (f"{NOW}s", 0),
    ],
)
def test_since_keeps_the_documented_forms(text: str, since: int) -> None:
    assert parse_since(text, NOW) == since


def test_audit_since_a_unix_time_without_at_is_a_usage_error(server: Cli) -> None:
    result = server.run("audit", "--since", "1795483930")
    assert result.returncode == 2 and result.stdout == ""
    assert (
        "Error: Invalid value for '--since': a number needs a unit: @1795483930 for a Unix "
        "time, 1795483930s for seconds back from now"
    ) in result.stderr
    assert server.ok("audit", "--since", "@1795483930", "--json").startswith("[")
    assert "A number without a unit is refused." in " ".join(server.ok("audit", "--help").split())


# -- 3. token sign: --claims is optional, in the code and in the docs -------------------


def _synopsis(command: str) -> str:
    (line,) = [line for line in DOCS.read_text().splitlines() if line.startswith(command)]
    return line


def test_sign_without_claims_signs_iat_and_exp_only(es_keys: Path) -> None:
    result = CliRunner().invoke(
        cli, ["token", "sign", "--key", str(es_keys / "private.pem"), "--alg", "ES256"]
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    decoded = CliRunner().invoke(cli, ["token", "decode", token])
    assert set(json.loads(decoded.stdout)["payload"]) == {"iat", "exp"}


def test_the_sign_synopsis_brackets_exactly_the_optional_options() -> None:
    synopsis = _synopsis("## `tokensmith token sign ")
    bracketed = set(re.findall(r"\[(--[a-z-]+)", synopsis))
    outside = set(re.findall(r"(--[a-z-]+)", re.sub(r"\[[^]]*\]", "", synopsis)))
    options = [p for p in sign_command.params if isinstance(p, click.Option)]
    assert bracketed | outside == {p.opts[0] for p in options}
    assert outside == {p.opts[0] for p in options if p.required}, synopsis


# -- 4. keys list: a revoked key shows when it was revoked ------------------------------


def test_keys_list_shows_the_revocation_time_of_a_retired_then_revoked_key(
    server: Cli,
) -> None:
    (current,) = [k["kid"] for k in server.json("keys", "list") if k["state"] == "current"]
    server.ok("keys", "retire", "--", current)
    # Retired an hour before it is revoked (the commands would run within one second).
    with sqlite3.connect(server.data_dir / "tokensmith.db") as db:
        db.execute(
            "UPDATE signing_keys SET retired_at = retired_at - 3600 WHERE kid = ?", (current,)
        )
    server.ok("keys", "revoke", "--yes", "--", current)
    (listed,) = [k for k in server.json("keys", "list") if k["kid"] == current]
    assert listed["state"] == "revoked" and listed["retired_at"] < listed["revoked_at"]
    (row,) = [r for r in parse_table(server.ok("keys", "list")) if r["KID"] == current]
    assert row["RETIRED/REVOKED"] == format_time(listed["revoked_at"])


# -- 5. keys prune --help names the changes it makes ------------------------------------


def test_keys_prune_help_names_every_key_change_it_can_make() -> None:
    result = CliRunner().invoke(cli, ["keys", "prune", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    # What `plan` returns: CreateKey, Activate, Retire, Delete (never Revoke); then prune.
    for change in ("created", "activated", "retired", "deleted", "audit entries"):
        assert change in text, change


# -- 6. usage errors quote the option the same way --------------------------------------


def _usage_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    return line


@pytest.fixture
def usage_errors(server: Cli, es_keys: Path) -> list[str]:
    public = str(es_keys / "public.pem")
    private = str(es_keys / "private.pem")
    return [
        # Our own checks in the command bodies...
        _usage_error(server.run("clients", "add", "w", "--grant", "password", "--lifetime", "9d")),
        _usage_error(server.run("audit", "--since", "soon")),
        _usage_error(run("token", "verify", "--key", public, "--alg", "none", "x")),
        _usage_error(run("token", "sign", "--key", private, "--alg", "ES256", "--claims", "[]")),
        _usage_error(run("keygen", "--alg", "RS256", "--rsa-bits", "1024", "--out", "unused")),
        # ... and click's, for a callback or a type.
        _usage_error(server.run("clients", "add", "w", "--grant", "password", "--lifetime", "0")),
        _usage_error(run("token", "verify", "--key", public, "--alg", "ES256", "--leeway", "999")),
    ]


def test_usage_errors_quote_the_option_name_alike(usage_errors: list[str]) -> None:
    for line in usage_errors:
        assert re.match(r"Error: Invalid value for '--[a-z-]+': ", line), line
