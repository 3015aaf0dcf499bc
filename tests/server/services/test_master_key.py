"""The master key: from the settings, else a 0600 key file created on first use, never
beside an existing database (its key file was lost)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from tokensmith.keys import MasterKey, SealError, seal, unseal
from tokensmith.server.services import master_key
from tokensmith.server.services.master_key import (
    InvalidKeyFile,
    MasterKeyFileError,
    MissingKeyFile,
    UnsafeKeyFile,
    check_key_file_not_lost,
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


def make_database(path: Path) -> None:
    """A real SQLite file, as the store leaves one (any table will do: only its presence counts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE signing_keys (kid TEXT PRIMARY KEY)")
    connection.close()


def test_no_new_key_is_made_beside_an_existing_database(tmp_path: Path) -> None:
    # The key file was lost (deleted, or not restored with the database): a new key could
    # never unseal the database's signing keys, and left in place it would stand in the
    # way of restoring the real one, since a key file is never replaced.
    load_or_create_master_key(settings_for(tmp_path))
    path = tmp_path / "master.key"
    database = tmp_path / "tokensmith.db"
    make_database(database)
    path.unlink()
    with pytest.raises(MissingKeyFile) as caught:
        load_or_create_master_key(settings_for(tmp_path))
    assert caught.value.code == "missing_key_file"
    assert isinstance(caught.value, MasterKeyFileError)
    assert str(caught.value) == (
        f"the master key file {path} is missing but the database {database} exists; "
        "restore the key file (a new key could not unseal the database's signing keys)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokensmith.db"]  # nothing made
    with pytest.raises(MissingKeyFile):
        check_key_file_not_lost(settings_for(tmp_path))


def test_the_database_named_by_database_url_counts_too(tmp_path: Path) -> None:
    database = tmp_path / "elsewhere" / "state.db"
    make_database(database)
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite+aiosqlite:///{database}")
    with pytest.raises(MissingKeyFile) as caught:
        load_or_create_master_key(settings)
    assert f"the database {database} exists" in str(caught.value)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "database_url",
    [
        None,  # the default file, not there yet: a first start
        "sqlite+aiosqlite:///:memory:",
        # A server's database: whether it holds keys cannot be seen from here.
        "postgresql+asyncpg://app:pw@db.internal/ts",
    ],
)
def test_a_key_is_made_where_no_database_file_exists(
    tmp_path: Path, database_url: str | None
) -> None:
    extra = {} if database_url is None else {"database_url": database_url}
    settings = Settings(data_dir=tmp_path, **extra)
    check_key_file_not_lost(settings)
    key = load_or_create_master_key(settings)
    assert same_key(key, load_or_create_master_key(settings))
    assert (tmp_path / "master.key").exists()


def test_an_existing_key_file_and_database_are_used(tmp_path: Path) -> None:
    first = load_or_create_master_key(settings_for(tmp_path))
    make_database(tmp_path / "tokensmith.db")
    check_key_file_not_lost(settings_for(tmp_path))
    assert same_key(load_or_create_master_key(settings_for(tmp_path)), first)


def test_the_configured_key_needs_no_file_beside_a_database(tmp_path: Path) -> None:
    make_database(tmp_path / "tokensmith.db")
    configured = MasterKey.generate()
    settings = settings_for(tmp_path, configured.to_text())
    check_key_file_not_lost(settings)
    assert same_key(load_or_create_master_key(settings), configured)
    assert not (tmp_path / "master.key").exists()


def test_a_key_and_database_made_by_another_process_meanwhile_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two servers starting on a fresh directory: between this one finding no key file and
    # looking for the database, the other made both (the key first, as build_services
    # does). Its key is the one, not an error.
    theirs = MasterKey.generate()
    path = tmp_path / "master.key"
    real_read = master_key._read_key_file
    calls = 0

    def read_then_lose_the_race(target: Path) -> MasterKey:
        nonlocal calls
        calls += 1
        try:
            return real_read(target)
        finally:
            if calls == 1:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                os.write(fd, theirs.to_text().encode())
                os.close(fd)
                make_database(tmp_path / "tokensmith.db")

    monkeypatch.setattr(master_key, "_read_key_file", read_then_lose_the_race)
    assert same_key(load_or_create_master_key(settings_for(tmp_path)), theirs)
    assert calls == 2
