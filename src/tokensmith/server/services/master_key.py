"""The master key that seals private signing keys at rest: from the settings, or a 0600 key file.

``load_or_create_master_key(settings)`` takes ``TOKENSMITH_MASTER_KEY`` when it is
set; otherwise it reads ``<data_dir>/master.key``, creating it on first use. A key
file that group or others may read (or write) is refused: whoever reads it can
unseal every signing key in the database. Errors name the file, never its content.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import Protocol

from tokensmith.errors import TokensmithError
from tokensmith.keys import MasterKey

__all__ = [
    "InvalidKeyFile",
    "MasterKeyFileError",
    "MasterKeySettings",
    "UnsafeKeyFile",
    "load_or_create_master_key",
]

# A key file is one line of base64url (43 characters); anything much bigger is not one.
_MAX_FILE_SIZE = 1024


class MasterKeySettings(Protocol):
    """What the master key needs from the settings (``tokensmith.server.settings.Settings``)."""

    def parsed_master_key(self) -> MasterKey | None: ...

    def master_key_file(self) -> Path: ...


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


def load_or_create_master_key(settings: MasterKeySettings) -> MasterKey:
    """The configured master key, else the key file's (created with mode 0600 if missing)."""
    configured = settings.parsed_master_key()
    if configured is not None:
        return configured
    path = settings.master_key_file()
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    _create_key_file(path, MasterKey.generate())
    # Read back what is on disk: if another process created the file first, its key wins.
    return _read_key_file(path)


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
