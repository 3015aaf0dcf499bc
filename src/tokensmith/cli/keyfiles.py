"""Reading and writing key files for the command line (the JOSE core does no I/O)."""

from __future__ import annotations

import os
from pathlib import Path

from tokensmith.jose import JWK, JWKSet

__all__ = ["load_key_file", "write_new_file"]


def load_key_file(path: Path, *, alg: str | None = None) -> JWK | JWKSet:
    """A PEM key or certificate, a JWK, or a JWK Set, recognised by its content."""
    data = path.read_bytes()
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
    """Write ``data``; a private file is created 0600 so it is never readable by others."""
    mode = 0o600 if private else 0o644
    if not force:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return
    # Replace atomically: a reader never sees half a key, and the mode is set
    # before any byte is written.
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
