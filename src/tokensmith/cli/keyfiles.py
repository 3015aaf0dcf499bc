"""Reading and writing key files for the command line (the JOSE core does no I/O)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO

from tokensmith.jose import JWK, JWKSet

__all__ = ["MAX_KEY_FILE", "load_key_file", "read_at_most", "write_new_file"]

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
# A key file may be a process substitution of a remote JWKS (`--key <(curl ...)`): read
# no more than the verifier SDK takes from a JWKS endpoint.
MAX_KEY_FILE = 512 * 1024


def read_at_most(stream: IO[bytes], size: int) -> bytes:
    """Up to ``size`` bytes of ``stream``, fewer only at its end (a pipe gives short reads)."""
    chunks: list[bytes] = []
    left = size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def load_key_file(path: Path, *, alg: str | None = None) -> JWK | JWKSet:
    """A PEM key or certificate, a JWK, or a JWK Set, recognised by its content."""
    with path.open("rb") as file:
        data = read_at_most(file, MAX_KEY_FILE + 1)
    if len(data) > MAX_KEY_FILE:
        raise ValueError(f"{path}: larger than {MAX_KEY_FILE} bytes, not a key file")
    if data.lstrip().startswith(b"-----BEGIN"):
        if b"ENCRYPTED" in data:
            raise ValueError(
                f"{path}: encrypted PEM keys are not supported here (passwords never go on argv)"
            )
        return JWK.from_pem(data, alg=alg)
    if data.lstrip().startswith(b"{"):
        if b'"keys"' in data:
            return JWKSet.from_json(data)
        return JWK.from_json(data)
    raise ValueError(f"{path}: not a PEM key, a JWK or a JWK Set")


def write_new_file(path: Path, data: bytes, *, private: bool, force: bool) -> None:
    """Write ``data``; a private file is created 0600 so it is never readable by others.

    With ``force`` an existing file is replaced atomically. The data goes to a temporary
    file that ``mkstemp`` creates with a random name, ``O_EXCL`` and mode 0600: a file
    or symlink another user placed in the directory is never written through or
    followed (a fixed temporary name would hand them the private key). It is removed
    if anything fails before the replace.
    """
    mode = 0o600 if private else 0o644
    if not force:
        # O_EXCL also refuses a symlink at ``path``, dangling or not.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            # Before any byte: a public file is widened from mkstemp's 0600, nothing else.
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # rename replaces a symlink at ``path`` itself, never the file it points to.
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
