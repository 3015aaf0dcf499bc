"""The application servers' configuration, from the environment (both examples share it).

| variable | meaning | default |
|---|---|---|
| `APP_ISSUER` | the token server's issuer URL (discovery and JWKS are found from it) | required |
| `APP_AUDIENCE` | the `aud` this service answers to (comma-separated for several) | required |
| `APP_ALGORITHMS` | allowed algorithms, comma-separated | those the discovery document announces |
| `APP_HOST`, `APP_PORT` | where to listen | `127.0.0.1`, `8001` |
| `APP_CLIENT_ID`, `APP_CLIENT_SECRET` | a confidential client, for the feed | no feed |
| `APP_REVOCATION_POLL` | seconds between polls of the feed | `5` |
| `APP_ALLOW_INSECURE_HTTP` | `1` to accept an http issuer outside loopback (tests only) | `0` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tokensmith.verify import VerifierConfig

__all__ = ["AppConfig", "load_config"]


@dataclass(frozen=True)
class AppConfig:
    verifier: VerifierConfig
    host: str
    port: int


def _list(value: str | None) -> list[str] | None:
    if value is None or not value.strip():
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def load_config(environ: Mapping[str, str] = os.environ) -> AppConfig:
    missing = [name for name in ("APP_ISSUER", "APP_AUDIENCE") if not environ.get(name)]
    if missing:
        raise SystemExit(f"set {' and '.join(missing)} (see examples/app_server/README.md)")
    audience = _list(environ["APP_AUDIENCE"]) or []
    verifier = VerifierConfig(
        issuer=environ["APP_ISSUER"],
        audience=audience,
        algorithms=_list(environ.get("APP_ALGORITHMS")),
        client_id=environ.get("APP_CLIENT_ID") or None,
        client_secret=environ.get("APP_CLIENT_SECRET") or None,
        revocation_poll_interval=float(environ.get("APP_REVOCATION_POLL", "5")),
        allow_insecure_http=environ.get("APP_ALLOW_INSECURE_HTTP") == "1",
    )
    return AppConfig(
        verifier, environ.get("APP_HOST", "127.0.0.1"), int(environ.get("APP_PORT", "8001"))
    )
