"""Persistence of the token server: SQLAlchemy 2 (async), SQLite by default, Alembic migrations.

    from tokensmith.store import Database, Repositories, sqlite_url, upgrade

    db = Database.open(sqlite_url(data_dir))
    await upgrade(db)                       # idempotent; `init` and `serve` call it
    async with db.transaction() as session:  # commit on success, rollback on error
        repos = Repositories(session)
        user = await repos.users.get_by_username("alice")

One repository per aggregate; each takes the caller's ``AsyncSession`` and
returns plain frozen values, never ORM objects. See docs/store.md.
"""

from .audit import AuditEntry, AuditEvent, AuditRepository
from .clients import UNCHANGED, Client, ClientRepository, check_client_id
from .database import (
    DB_FILENAME,
    Database,
    check_driver,
    create_engine,
    is_sqlite,
    session_factory,
    sqlite_file,
    sqlite_url,
)
from .errors import (
    ClientIdTaken,
    ConcurrentChange,
    DatabaseUnavailable,
    DatabaseUnsupported,
    InvalidUsername,
    StoreError,
    UnknownClient,
    UnknownSchemaRevision,
    UnknownUser,
    UsernameTaken,
)
from .key_settings import KeySettings, KeySettingsRepository
from .login_failures import LoginFailure, LoginFailureChange, LoginFailureRepository
from .migrate import current_revision, head_revision, make_config, upgrade, upgrade_sync
from .prune import PruneCounts, prune
from .refresh_tokens import AccessTokenRef, RefreshToken, RefreshTokenRepository, hash_token
from .repositories import Repositories
from .revocations import FeedPage, NotBefore, RevocationRepository, RevokedToken
from .signing_keys import KeyRepository, MakeKey, NewKey, StoredKey
from .token_retention import TokenRetentionRepository
from .users import MAX_ROLE, PROFILE_FIELDS, User, UserRepository, normalize_username

__all__ = [
    "DB_FILENAME",
    "MAX_ROLE",
    "PROFILE_FIELDS",
    "UNCHANGED",
    "AccessTokenRef",
    "AuditEntry",
    "AuditEvent",
    "AuditRepository",
    "Client",
    "ClientIdTaken",
    "ClientRepository",
    "ConcurrentChange",
    "Database",
    "DatabaseUnavailable",
    "DatabaseUnsupported",
    "FeedPage",
    "InvalidUsername",
    "KeyRepository",
    "KeySettings",
    "KeySettingsRepository",
    "LoginFailure",
    "LoginFailureChange",
    "LoginFailureRepository",
    "MakeKey",
    "NewKey",
    "NotBefore",
    "PruneCounts",
    "RefreshToken",
    "RefreshTokenRepository",
    "Repositories",
    "RevocationRepository",
    "RevokedToken",
    "StoreError",
    "StoredKey",
    "TokenRetentionRepository",
    "UnknownClient",
    "UnknownSchemaRevision",
    "UnknownUser",
    "User",
    "UserRepository",
    "UsernameTaken",
    "check_client_id",
    "check_driver",
    "create_engine",
    "current_revision",
    "hash_token",
    "head_revision",
    "is_sqlite",
    "make_config",
    "normalize_username",
    "prune",
    "session_factory",
    "sqlite_file",
    "sqlite_url",
    "upgrade",
    "upgrade_sync",
]
