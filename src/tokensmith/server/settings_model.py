"""The typed settings model of the token server: every setting, its type, range and default.

Declared once here; ``settings.py`` loads it from the environment and a TOML file,
and ``settings_doc.py`` renders the configuration table from it. The checks live
beside it: one value at a time in ``settings_checks.py``, settings that must agree
in ``settings_conflicts.py``. The model only takes keyword arguments: it never
reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from tokensmith.keys import MasterKey, RotationPolicy

from .settings_checks import (
    DAY,
    HOUR,
    Duration,
    Problem,
    check_algorithms,
    check_database_url,
    check_hs256_secret,
    check_master_key,
    check_proxies,
    lower_text,
    normalize_issuer,
    reject_blank,
    split_commas,
)
from .settings_conflicts import cross_field_problems

__all__ = [
    "ENV_PREFIX",
    "Algorithm",
    "LogLevel",
    "Settings",
    "ThrottleStoreChoice",
    "env_name",
]

ENV_PREFIX = "TOKENSMITH_"

Algorithm = Literal["RS256", "ES256", "EdDSA", "HS256"]
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
ThrottleStoreChoice = Literal["auto", "memory", "database"]


class Settings(BaseSettings):
    """Everything the token server can be told. Durations are whole seconds."""

    # Only keyword arguments feed the model: load_settings does the sourcing, from
    # a mapping it is given, so nothing below the CLI reads the process environment.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="forbid",
        frozen=True,
        validate_default=True,
        hide_input_in_errors=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)

    # -- identity and storage ------------------------------------------------------
    issuer: Annotated[str, AfterValidator(normalize_issuer)] = Field(
        default="http://127.0.0.1:8000",
        description="The `iss` of every token and the base of the discovery URLs. "
        "Absolute http(s) URL, no query or fragment; a trailing slash is removed. "
        "http only for localhost and loopback addresses (127.0.0.0/8, ::1).",
    )
    allow_insecure_issuer: bool = Field(
        default=False,
        description="Allow an http issuer on a non-local host (test deployments only).",
    )
    data_dir: Annotated[Path, BeforeValidator(reject_blank)] = Field(
        default=Path("var"),
        description="Directory of the SQLite database and the master key file.",
        json_schema_extra={"env": "TOKENSMITH_DATA", "default_text": "`./var`"},
    )
    database_url: Annotated[SecretStr | None, AfterValidator(check_database_url)] = Field(
        default=None,
        description="SQLAlchemy async URL; it may hold a password, so it is kept secret.",
        json_schema_extra={"default_text": "`sqlite+aiosqlite:///<data_dir>/tokensmith.db`"},
    )
    master_key: Annotated[SecretStr | None, AfterValidator(check_master_key)] = Field(
        default=None,
        description="Base64url of 32 random bytes that seals private keys at rest. "
        "Unset: the key file `<data_dir>/master.key` (mode 0600, made by `tokensmith init`).",
        json_schema_extra={"default_text": "key file `<data_dir>/master.key`"},
    )

    # -- signing keys and tokens ---------------------------------------------------
    signing_algorithms: Annotated[
        tuple[Algorithm, ...], BeforeValidator(split_commas), AfterValidator(check_algorithms)
    ] = Field(
        default=("RS256",),
        description="Algorithms with an active signing key (comma-separated in the "
        "environment). Tokens are signed with the first whose ring signs: an algorithm "
        "added to a running deployment (or replacing one) signs once its first key has "
        "been published for "
        "`key_prepublish`. HS256 needs `hs256_secret`.",
    )
    hs256_secret: Annotated[SecretStr | None, AfterValidator(check_hs256_secret)] = Field(
        default=None,
        description="Shared secret (>= 32 random bytes, used as UTF-8) for HS256; never "
        "published in the JWKS. Whoever holds it can sign tokens this server accepts, "
        "admin tokens included: keep it to the single party, and drop HS256 from "
        "`signing_algorithms` once no HS256 token is still alive.",
    )
    rotation_period: Annotated[int, Duration(HOUR, 366 * DAY)] = Field(
        default=30 * DAY, description="How long a key signs before the next one takes over."
    )
    key_prepublish: Annotated[int, Duration(60, 30 * DAY)] = Field(
        default=DAY,
        description="How long a new key is published in the JWKS before it signs. "
        "Shorter than `rotation_period`, longer than `jwks_max_age`.",
    )
    jwks_max_age: Annotated[int, Duration(0, DAY)] = Field(
        default=600,
        description="`Cache-Control: max-age` of the JWKS; must stay below `key_prepublish` "
        "so verifiers learn a key before it signs.",
    )
    access_token_lifetime: Annotated[int, Duration(60, DAY)] = Field(
        default=15 * 60,
        description="Default access-token lifetime (a client may set a shorter one).",
    )
    refresh_token_idle_lifetime: Annotated[int, Duration(60, 366 * DAY)] = Field(
        default=14 * DAY, description="A refresh token unused for this long expires."
    )
    refresh_token_absolute_lifetime: Annotated[int, Duration(60, 366 * DAY)] = Field(
        default=90 * DAY,
        description="A login's refresh tokens all expire this long after the login; "
        "at least the idle lifetime.",
    )
    refresh_reuse_grace: Annotated[int, Duration(0, 60)] = Field(
        default=10,
        description="A used refresh token presented again within this time returns the "
        "same new pair instead of revoking the family.",
    )
    leeway: Annotated[int, Duration(0, 300)] = Field(
        default=60, description="Clock skew tolerated for token times, and added to key retention."
    )
    client_cache_ttl: Annotated[int, Duration(0, 60)] = Field(
        default=5,
        description="How long a process keeps a client's row (secret hash, grants, disabled "
        "flag) in memory for client authentication; the secret is still checked on every "
        "request. Changes made through a process apply there at once; a change made by the "
        "CLI or another worker takes up to this long to reach the others. 0: read it on "
        "every request.",
    )

    # -- login throttling ----------------------------------------------------------
    login_free_failures: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="Failures per username and address before delays start.",
    )
    login_lock_threshold: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Failures per username and address that lock that pair out (429).",
    )
    login_lock_seconds: Annotated[int, Duration(1, DAY)] = Field(
        default=900, description="How long a lock lasts (Retry-After)."
    )
    login_ip_threshold: int = Field(
        default=100,
        ge=1,
        le=1_000_000,
        description="Failures from one address, any username, that lock the address out.",
    )
    login_window_seconds: Annotated[int, Duration(60, DAY)] = Field(
        default=900, description="Failures older than this are forgotten."
    )
    login_max_delay: Annotated[int, Duration(0, 300)] = Field(
        default=60, description="Cap of the growing delay after the free failures."
    )
    throttle_store: Annotated[ThrottleStoreChoice, BeforeValidator(lower_text)] = Field(
        default="auto",
        description="Where the login-throttle counters live: `memory` (per process, the "
        "fastest), `database` (shared by every worker and every instance on the database), "
        "`auto`: `database` when `workers` > 1, else `memory`. Several instances on one "
        "database need `database`.",
    )

    # -- housekeeping and process --------------------------------------------------
    audit_retention: Annotated[int, Duration(DAY, 3660 * DAY)] = Field(
        default=90 * DAY, description="Audit events older than this are pruned."
    )
    prune_interval: Annotated[int, Duration(60, DAY)] = Field(
        default=HOUR, description="How often expired rows are pruned."
    )
    host: str = Field(default="127.0.0.1", min_length=1, description="Address `serve` binds to.")
    trusted_proxies: Annotated[
        tuple[str, ...], BeforeValidator(split_commas), AfterValidator(check_proxies)
    ] = Field(
        default=(),
        description="Addresses or networks (CIDR) of the reverse proxies in front of "
        "`serve` whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed "
        "(comma-separated in the environment). Unset: the client address is the socket's "
        "peer, always, so no client can choose the address the login throttle counts and "
        "the audit log records.",
        json_schema_extra={"default_text": "none"},
    )
    port: int = Field(default=8000, ge=1, le=65535, description="Port `serve` listens on.")
    workers: int = Field(default=1, ge=1, le=256, description="Worker processes of `serve`.")
    log_level: Annotated[LogLevel, BeforeValidator(lower_text)] = Field(
        default="info", description="Server log level."
    )
    access_log: bool = Field(
        default=True,
        description="The access log, one line per request (at log level `info` or below): "
        "the only record of requests the audit log does not cover, such as refused admin "
        "API calls. Written in batches (at most 0.2 s late, lost on a crash), the path "
        "without its query string.",
    )

    # -- cross-field checks (after every field is valid) ---------------------------
    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        problems = cross_field_problems(self, env_name)
        if not problems:
            # The key ring refuses what cross_field_problems should already have caught;
            # asking it here keeps the two in step if either changes.
            try:
                self.rotation_policy()
            except (TypeError, ValueError) as exc:
                names = ("rotation_period", "key_prepublish", "access_token_lifetime", "leeway")
                problems.append(Problem(names, str(exc)))
        if problems:
            summary = "; ".join(p.message for p in problems)
            raise PydanticCustomError("settings_conflict", summary, {"problems": problems})
        return self

    # -- derived values --------------------------------------------------------------
    def rotation_policy(self) -> RotationPolicy:
        """The key ring's policy: a retired key outlives the longest access token."""
        return RotationPolicy(
            rotation_period=self.rotation_period,
            prepublish=self.key_prepublish,
            max_token_lifetime=self.access_token_lifetime,
            leeway=self.leeway,
        )

    def resolved_throttle_store(self) -> Literal["memory", "database"]:
        """``throttle_store`` with ``auto`` decided: the database once there are workers to
        share the counters between, memory for a single process."""
        if self.throttle_store == "auto":
            return "database" if self.workers > 1 else "memory"
        return self.throttle_store

    def resolved_database_url(self) -> str:
        """``database_url`` if set, else the SQLite file in the data directory."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{(self.data_dir / 'tokensmith.db').as_posix()}"

    def master_key_file(self) -> Path:
        """Where the master key lives when ``master_key`` is not set."""
        return self.data_dir / "master.key"

    def parsed_master_key(self) -> MasterKey | None:
        """The configured master key, or None when the key file is to be used."""
        if self.master_key is None:
            return None
        return MasterKey.from_text(self.master_key.get_secret_value())

    def hs256_secret_bytes(self) -> bytes | None:
        if self.hs256_secret is None:
            return None
        return self.hs256_secret.get_secret_value().encode("utf-8")


def env_name(field: str) -> str:
    """The environment variable of a setting (``TOKENSMITH_`` + its name, unless declared)."""
    info = Settings.model_fields[field]
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("env"), str):
        return str(extra["env"])
    return ENV_PREFIX + field.upper()
