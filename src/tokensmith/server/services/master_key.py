"""The master key that seals private signing keys at rest: from the settings, or a 0600 key file.

``load_or_create_master_key(settings)`` takes ``TOKENSMITH_MASTER_KEY`` when it is
set; otherwise it reads ``<data_dir>/master.key``, creating it on first use. A key
file that group or others may read (or write) is refused: whoever reads it can
unseal every signing key in the database. Errors name the file, never its content.

No key is made beside an existing SQLite database (``MissingKeyFile``): a new key could
never unseal the database's signing keys, and the new file would stand in the way of
restoring the real one (a key file is never replaced). This holds for every way the
server starts (the CLI, ``create_app`` under any ASGI server, each worker), since they
all load the key here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Protocol

from sqlalchemy.exc import ArgumentError

from tokensmith.errors import TokensmithError
from tokensmith.keys import MasterKey
from tokensmith.store import sqlite_file

__all__ = [
    "InvalidKeyFile",
    "MasterKeyFileError",
    "MasterKeySettings",
    "MissingKeyFile",
    "UnsafeKeyFile",
    "check_key_file_not_lost",
    "load_or_create_master_key",
    "path_missing",
]

# A key file is one line of base64url (43 characters); anything much bigger is not one.
_MAX_FILE_SIZE = 1024


class MasterKeySettings(Protocol):
    """What the master key needs from the settings (``tokensmith.server.settings.Settings``)."""

    def parsed_master_key(self) -> MasterKey | None: ...

    def master_key_file(self) -> Path: ...

    def resolved_database_url(self) -> str: ...


class MasterKeyFileError(TokensmithError):
    """The master key file cannot be used; the message names the file, never its content."""

    code = "master_key_file_error"
    description = "The master key file cannot be used."


class UnsafeKeyFile(MasterKeyFileError):
    """The key file is readable or writable by group or others, or is not a regular file."""

    code = "unsafe_key_file"
    description = "The master key file is not private to its owner."


class InvalidKeyFile(MasterKeyFileError):
    """The key file exists but does not hold a master key (or cannot be read)."""

    code = "invalid_key_file"
    description = "The master key file does not hold a valid master key."


class MissingKeyFile(MasterKeyFileError):
    """The database exists but its master key file does not (deleted, or not restored)."""

    code = "missing_key_file"
    description = "The master key file of the database is missing."


def load_or_create_master_key(settings: MasterKeySettings) -> MasterKey:
    """The configured master key, else the key file's (created with mode 0600 if missing).

    A missing key file is created only where no SQLite database exists yet; beside one
    it is ``MissingKeyFile`` (restore the file: a new key could not unseal the database).
    """
    configured = settings.parsed_master_key()
    if configured is not None:
        return configured
    path = settings.master_key_file()
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    database = _existing_database(settings)
    if database is not None:
        # Read again: another process starting on a fresh directory may have made both
        # since (it makes the key before the database), and then its key is the one.
        try:
            return _read_key_file(path)
        except FileNotFoundError:
            raise _missing_key_file(path, database) from None
    _create_key_file(path, MasterKey.generate())
    # Read back what is on disk: if another process created the file first, its key wins.
    return _read_key_file(path)


def check_key_file_not_lost(settings: MasterKeySettings) -> None:
    """Raise ``MissingKeyFile`` where ``load_or_create_master_key`` would: the key file is
    missing but the SQLite database exists. Nothing is read or made.

    For callers that decide what a missing key file means before opening anything (the
    CLI's ``not_initialized``), so that a lost key file is still reported as lost.
    """
    if settings.parsed_master_key() is not None:
        return
    path = settings.master_key_file()
    if not path_missing(path):
        return
    database = _existing_database(settings)
    if database is not None:
        raise _missing_key_file(path, database)


def _missing_key_file(path: Path, database: Path) -> MissingKeyFile:
    return MissingKeyFile(
        f"the master key file {path} is missing but the database {database} exists; "
        "restore the key file (a new key could not unseal the database's signing keys)"
    )


def _existing_database(settings: MasterKeySettings) -> Path | None:
    """The SQLite database file the settings name, if it exists (or may: see ``path_missing``).

    None for a file known not to exist, an in-memory database and any other database (a
    server's: whether it holds keys is not known without the key, so the key file is
    made as before; restoring a lost one is the operator's part there).
    """
    try:
        database = sqlite_file(settings.resolved_database_url())
    except ArgumentError:
        return None  # the store reports an unusable URL when it opens the database
    return None if database is None or path_missing(database) else database


def path_missing(path: Path) -> bool:
    """Whether ``path`` is known not to exist. A path that cannot be looked at (in a
    directory this user may not search) is not missing: reading it reports the reason,
    and a key is never made where a database may be."""
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return True
    except OSError:
        return False
    return False


def _read_key_file(path: Path) -> MasterKey:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InvalidKeyFile(f"cannot read the master key file {path}: {_reason(exc)}") from None
    # fstat on the open file, not stat on the path: the file checked is the file read.
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnsafeKeyFile(f"the master key file {path} is not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if info.st_mode & 0o077:
            raise UnsafeKeyFile(
                f"the master key file {path} is accessible to group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run chmod 600 on it"
            )
        data = handle.read(_MAX_FILE_SIZE + 1)
    if len(data) > _MAX_FILE_SIZE:
        raise InvalidKeyFile(f"the master key file {path} is too large to hold a master key")
    try:
        return MasterKey.from_text(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        # from_text's messages describe the problem and never echo the text.
        detail = "not ASCII" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise InvalidKeyFile(
            f"the master key file {path} does not hold a master key: {detail}"
        ) from None


def _create_key_file(path: Path, key: MasterKey) -> None:
    """Write the key to ``path`` atomically; a file that appeared meanwhile is left alone."""
    directory = path.parent
    try:
        # 0700 for a directory made here; an existing one keeps the mode its owner chose.
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidKeyFile(
            f"cannot create the data directory {directory}: {_reason(exc)}"
        ) from None
    content = (key.to_text() + "\n").encode("ascii")
    # Write a private temporary file, then link it into place: readers never see a
    # half-written key, and link (unlike rename) never replaces a key another process
    # created first.
    temporary = directory / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        _write_new(temporary, content)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # Filesystems without hard links: O_EXCL still never overwrites a key.
            try:
                _write_new(path, content)
            except FileExistsError:
                return
    except OSError as exc:
        raise InvalidKeyFile(f"cannot create the master key file {path}: {_reason(exc)}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _write_new(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        written = 0
        while written < len(content):
            written += os.write(fd, content[written:])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
