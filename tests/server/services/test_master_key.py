"""The master key: from the settings, else a 0600 key file created on first use."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tokensmith.keys import MasterKey, SealError, seal, unseal
from tokensmith.server.services.master_key import (
    InvalidKeyFile,
    UnsafeKeyFile,
    load_or_create_master_key,
)
from tokensmith.server.settings import Settings


def settings_for(data_dir: Path, master_key: str | None = None) -> Settings:
    if master_key is None:
        return Settings(data_dir=data_dir)
    return Settings(data_dir=data_dir, master_key=master_key)


def same_key(a: MasterKey, b: MasterKey) -> bool:
    # MasterKey has no equality; a blob sealed under one opens under the other only if equal.
    try:
        return unseal(b, seal(a, b"probe", context=b"test"), context=b"test") == b"probe"
    except SealError:
        return False


def test_creates_key_file_with_mode_0600_in_a_0700_directory(tmp_path: Path) -> None:
    data = tmp_path / "var" / "data"
    key = load_or_create_master_key(settings_for(data))
    path = data / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert MasterKey.from_text(path.read_text()).to_text() == key.to_text()
    # No temporary file left behind.
    assert sorted(p.name for p in data.iterdir()) == ["master.key"]


def test_second_call_reuses_the_file(tmp_path: Path) -> None:
    first = load_or_create_master_key(settings_for(tmp_path))
    before = (tmp_path / "master.key").read_bytes()
    second = load_or_create_master_key(settings_for(tmp_path))
    assert same_key(first, second)
    assert (tmp_path / "master.key").read_bytes() == before


def test_key_from_settings_wins_and_creates_no_file(tmp_path: Path) -> None:
    configured = MasterKey.generate()
    key = load_or_create_master_key(settings_for(tmp_path / "data", configured.to_text()))
    assert same_key(key, configured)
    assert not (tmp_path / "data").exists()


def test_key_from_settings_wins_over_an_existing_file(tmp_path: Path) -> None:
    from_file = load_or_create_master_key(settings_for(tmp_path))
    configured = MasterKey.generate()
    key = load_or_create_master_key(settings_for(tmp_path, configured.to_text()))
    assert same_key(key, configured)
    assert not same_key(key, from_file)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_refuses_a_file_group_or_others_can_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "master.key"
    text = MasterKey.generate().to_text()
    path.write_text(text + "\n")
    os.chmod(path, mode)
    with pytest.raises(UnsafeKeyFile) as caught:
        load_or_create_master_key(settings_for(tmp_path))
    assert caught.value.code == "unsafe_key_file"
    assert str(path) in str(caught.value)
    assert text not in str(caught.value)


def test_refuses_a_directory_in_place_of_the_file(tmp_path: Path) -> None:
    (tmp_path / "master.key").mkdir(mode=0o700)
    with pytest.raises(UnsafeKeyFile):
        load_or_create_master_key(settings_for(tmp_path))


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not a key\n",
        b"\xff\xfe binary",
        # A real key with one character cut off: the message must not echo it.
        MasterKey.generate().to_text()[:-1].encode(),
        b"A" * 5000,
    ],
)
def test_malformed_file_names_the_path_not_the_content(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(InvalidKeyFile) as caught:
        load_or_create_master_key(settings_for(tmp_path))
    message = str(caught.value)
    assert caught.value.code == "invalid_key_file"
    assert str(path) in message
    if len(content) > 8:
        assert content.decode("latin-1")[:20] not in message
    # The broken file is never replaced by a new key: that would orphan every sealed key.
    assert path.read_bytes() == content


def test_an_unreadable_file_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests run as root in CI, and root reads a 0000 file anyway: the refusal the
    # kernel would give an ordinary user is simulated at the open call instead.
    path = tmp_path / "master.key"
    path.write_text(MasterKey.generate().to_text())
    real_open = os.open

    def refusing_open(target: object, flags: int, *args: object) -> int:
        if Path(str(target)) == path and not flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied")
        return real_open(target, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(InvalidKeyFile, match="cannot read") as info:
        load_or_create_master_key(settings_for(tmp_path))
    assert str(path) in str(info.value)


def test_file_written_by_another_process_first_is_used(tmp_path: Path) -> None:
    # Simulates losing the creation race: the file exists by the time this process reads.
    theirs = MasterKey.generate()
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, theirs.to_text().encode())
    os.close(fd)
    assert same_key(load_or_create_master_key(settings_for(tmp_path)), theirs)
