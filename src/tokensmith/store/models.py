"""The tables of the token server, as SQLAlchemy declarative models.

Portable by construction, so PostgreSQL needs no schema rewrite: times are
integer Unix seconds (``BigInteger``), except the login throttle's instants
(``Instant``, float seconds kept exactly), flags are ``Boolean``, lists and objects
use the generic ``JSON`` type (TEXT on SQLite, json on PostgreSQL), lengths are
declared (SQLite ignores them, PostgreSQL enforces them, and the repositories
check them so both behave alike), and the partial unique indexes carry both a
``sqlite_where`` and a ``postgresql_where``. Constraint names come from one
naming convention so migrations can refer to them on either database.

The repositories work on the tables (``Model.__table__``) with Core statements
rather than through the ORM unit of work: conditional updates report their row
counts directly and no identity map can serve a stale row.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditLogRow",
    "Base",
    "ClientRow",
    "CounterRow",
    "LoginFailureRow",
    "RefreshTokenRow",
    "RevokedTokenRow",
    "SigningKeyRow",
    "SubjectNotBeforeRow",
    "UserRow",
    "table_of",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the rowid alias
# that autoincrements, so the same column is INTEGER there (also 64-bit in SQLite).
Id = BigInteger().with_variant(Integer(), "sqlite")
# Times are whole Unix seconds, as in tokensmith.keys.
Time = BigInteger
# The login throttle's instants: float seconds (its Clock.now()), kept bit for bit
# (REAL on SQLite, DOUBLE PRECISION on PostgreSQL), because a 2 s delay after a failure
# at x.7 must end at x.7 + 2, neither at a rounded-down x + 2 nor a rounded-up x + 3.
Instant = Double

MAX_NAME = 255  # kids, jtis, subjects, client ids, family ids
MAX_USERNAME = 150


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model (declarative models always have one)."""
    return cast(Table, model.__table__)


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # Normalized (NFKC + casefold) by tokensmith.store.users.normalize_username.
    username: Mapped[str] = mapped_column(String(MAX_USERNAME), unique=True)
    password_hash: Mapped[str] = mapped_column(String(MAX_NAME))
    roles: Mapped[list[str]] = mapped_column(JSON)
    disabled: Mapped[bool] = mapped_column(Boolean)
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(Time)
    updated_at: Mapped[int] = mapped_column(Time)


class ClientRow(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(MAX_NAME), unique=True)
    # None for a public client.
    secret_hash: Mapped[str | None] = mapped_column(String(MAX_NAME))
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    audiences: Mapped[list[str]] = mapped_column(JSON)
    # None: the server's default access-token lifetime.
    access_token_lifetime: Mapped[int | None] = mapped_column(Integer)
    disabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(Time)
    updated_at: Mapped[int] = mapped_column(Time)


_CURRENT = text("state = 'current'")
_NEXT = text("state = 'next'")


class SigningKeyRow(Base):
    __tablename__ = "signing_keys"
    __table_args__ = (
        CheckConstraint("state IN ('next', 'current', 'retired', 'revoked')", name="state"),
        # The ring invariants of tokensmith.keys, enforced by the database so two
        # instances applying plans from the same rows cannot both rotate.
        Index(
            "ix_signing_keys_one_current_per_alg",
            "alg",
            unique=True,
            sqlite_where=_CURRENT,
            postgresql_where=_CURRENT,
        ),
        Index(
            "ix_signing_keys_one_next_per_alg",
            "alg",
            unique=True,
            sqlite_where=_NEXT,
            postgresql_where=_NEXT,
        ),
    )

    kid: Mapped[str] = mapped_column(String(MAX_NAME), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(Time)
    activated_at: Mapped[int | None] = mapped_column(Time)
    retired_at: Mapped[int | None] = mapped_column(Time)
    revoked_at: Mapped[int | None] = mapped_column(Time)
    # The public JWK as JSON text; None for HMAC keys, which have no public half.
    public_jwk: Mapped[str | None] = mapped_column(Text)
    # tokensmith.keys.seal_jwk output: AES-GCM under the master key, bound to the kid.
    sealed_private: Mapped[bytes] = mapped_column(LargeBinary)


class RefreshTokenRow(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    # SHA-256 (hex) of the token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family_id: Mapped[str] = mapped_column(String(MAX_NAME), index=True)
    user_id: Mapped[int] = mapped_column(Id, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[str] = mapped_column(
        String(MAX_NAME), ForeignKey("clients.client_id", ondelete="CASCADE")
    )
    scope: Mapped[str] = mapped_column(Text)
    issued_at: Mapped[int] = mapped_column(Time)
    expires_at: Mapped[int] = mapped_column(Time, index=True)  # idle expiry
    family_expires_at: Mapped[int] = mapped_column(Time)  # absolute expiry of the login
    used_at: Mapped[int | None] = mapped_column(Time)
    # The successor issued when this token was used (the grace window answers with it).
    replaced_by: Mapped[int | None] = mapped_column(
        Id, ForeignKey("refresh_tokens.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[int | None] = mapped_column(Time)
    # The access token issued with this refresh token: revoking the family denylists it.
    access_jti: Mapped[str | None] = mapped_column(String(MAX_NAME))
    access_expires_at: Mapped[int | None] = mapped_column(Time)
    # That access token's scope: a repeat in the grace window signs it again as it was.
    access_scope: Mapped[str | None] = mapped_column(Text)


class RevokedTokenRow(Base):
    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(MAX_NAME), primary_key=True)
    subject: Mapped[str] = mapped_column(String(MAX_NAME))
    expires_at: Mapped[int] = mapped_column(Time, index=True)
    revoked_at: Mapped[int] = mapped_column(Time)
    # Position in the revocation feed (shared with subject_not_before; see counters).
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)


class SubjectNotBeforeRow(Base):
    __tablename__ = "subject_not_before"

    subject: Mapped[str] = mapped_column(String(MAX_NAME), primary_key=True)
    not_before: Mapped[int] = mapped_column(Time)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)


class CounterRow(Base):
    """Named monotonic counters; ``revocation_feed`` numbers the revocation feed.

    Drawing a number updates this row, which holds its lock until the transaction
    commits, so feed numbers become visible in the order they were drawn on
    PostgreSQL too; a sequence could commit 11 before 10, and a verifier that
    had read up to 11 would never see 10.
    """

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class AuditLogRow(Base):
    __tablename__ = "audit_log"
    # AUTOINCREMENT on SQLite: ids are never reused after pruning, so paging by id is stable.
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(Time, index=True)
    event: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(MAX_NAME))
    subject: Mapped[str | None] = mapped_column(String(MAX_NAME))
    client_address: Mapped[str | None] = mapped_column(String(MAX_NAME))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class LoginFailureRow(Base):
    """One login-throttle counter: the server's ``ThrottleState`` under its key."""

    __tablename__ = "login_failures"

    # "user:<username>|ip:<address>", "client:<client id>|ip:<address>" or "ip:<address>";
    # the throttle service builds them (and hashes one too long for the column).
    key: Mapped[str] = mapped_column(String(MAX_NAME * 2), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[float] = mapped_column(Instant)
    last_at: Mapped[float] = mapped_column(Instant)
    locked_until: Mapped[float | None] = mapped_column(Instant)
    # When the counter stops mattering under the policy that wrote it (the end of its
    # quiet window or of its lock, whichever is later): pruning needs no policy.
    expires_at: Mapped[float] = mapped_column(Instant, index=True)
