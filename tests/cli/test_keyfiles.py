"""``keygen --force`` replaces key files without writing through anything already there.

The directory may be shared (``/tmp``, a world-writable key directory): another user can
create any name in it before keygen runs. A predictable temporary name, opened without
``O_EXCL``, handed them the private key: a file they own was truncated and filled with
it, or a symlink they placed made keygen write the key wherever it pointed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tokensmith.cli.keyfiles import write_new_file

SCRIPT = Path(sys.executable).with_name("tokensmith")
PLANTED = b"planted by another user\n"


def keygen_force(out: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), "keygen", "--alg", "ES256", "--out", str(out), "--force"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def assert_private_key_file(path: Path) -> None:
    info = path.lstat()
    assert stat.S_ISREG(info.st_mode), "a symlink or other file was moved into place"
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_a_planted_temporary_file_is_neither_written_nor_moved(tmp_path: Path) -> None:
    keygen_force(tmp_path)
    planted = tmp_path / ".private.pem.tmp"
    planted.write_bytes(PLANTED)
    planted.chmod(0o644)
    inode = planted.stat().st_ino
    keygen_force(tmp_path)
    assert planted.read_bytes() == PLANTED  # not truncated, no key in it
    assert stat.S_IMODE(planted.stat().st_mode) == 0o644
    assert_private_key_file(tmp_path / "private.pem")
    assert (tmp_path / "private.pem").stat().st_ino != inode


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "catch"
    target.write_bytes(PLANTED)
    out = tmp_path / "keys"
    out.mkdir()
    dangling = elsewhere / "not-yet"
    (out / ".private.pem.tmp").symlink_to(target)
    (out / ".private.jwk.json.tmp").symlink_to(dangling)
    keygen_force(out)
    assert target.read_bytes() == PLANTED
    assert not dangling.exists()
    assert_private_key_file(out / "private.pem")
    assert stat.S_ISREG((out / "private.jwk.json").lstat().st_mode)


def test_a_symlink_at_the_destination_is_replaced_not_followed(tmp_path: Path) -> None:
    target = tmp_path / "catch"
    target.write_bytes(PLANTED)
    out = tmp_path / "keys"
    out.mkdir()
    (out / "private.pem").symlink_to(target)
    keygen_force(out)
    assert target.read_bytes() == PLANTED
    assert_private_key_file(out / "private.pem")


def test_modes_and_no_temporary_file_left(tmp_path: Path) -> None:
    write_new_file(tmp_path / "secret", b"s", private=True, force=True)
    write_new_file(tmp_path / "public", b"p", private=False, force=True)
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "public").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["public", "secret"]


def test_a_failed_replace_removes_the_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "private.pem").write_bytes(b"the old key")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk gone"):
        write_new_file(tmp_path / "private.pem", b"new", private=True, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["private.pem"]
    assert (tmp_path / "private.pem").read_bytes() == b"the old key"
