"""Initial schema: users, clients, signing keys, refresh tokens, revocations, audit, throttling.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Portable types only (see tokensmith.store.models); the tests compare this
revision's result with the models and fail on any difference.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

# Integer on SQLite (the autoincrementing rowid alias), BIGINT elsewhere.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.BigInteger


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("created_at", TIME(), nullable=False),
        sa.Column("updated_at", TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "clients",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("secret_hash", sa.String(length=255), nullable=True),
        sa.Column("grant_types", sa.JSON(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("access_token_lifetime", sa.Integer(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIME(), nullable=False),
        sa.Column("updated_at", TIME(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_clients_client_id")),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=255), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIME(), nullable=False),
        sa.Column("activated_at", TIME(), nullable=True),
        sa.Column("retired_at", TIME(), nullable=True),
        sa.Column("revoked_at", TIME(), nullable=True),
        sa.Column("public_jwk", sa.Text(), nullable=True),
        sa.Column("sealed_private", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "state IN ('next', 'current', 'retired', 'revoked')",
            name=op.f("ck_signing_keys_state"),
        ),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    for state in ("current", "next"):
        where = sa.text(f"state = '{state}'")
        op.create_index(
            f"ix_signing_keys_one_{state}_per_alg",
            "signing_keys",
            ["alg"],
            unique=True,
            sqlite_where=where,
            postgresql_where=where,
        )
    op.create_table(
        "refresh_tokens",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("issued_at", TIME(), nullable=False),
        sa.Column("expires_at", TIME(), nullable=False),
        sa.Column("family_expires_at", TIME(), nullable=False),
        sa.Column("used_at", TIME(), nullable=True),
        sa.Column("replaced_by", ID, nullable=True),
        sa.Column("revoked_at", TIME(), nullable=True),
        sa.Column("access_jti", sa.String(length=255), nullable=True),
        sa.Column("access_expires_at", TIME(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_refresh_tokens_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by"],
            ["refresh_tokens.id"],
            name=op.f("fk_refresh_tokens_replaced_by_refresh_tokens"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_refresh_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_tokens_token_hash")),
    )
    for column in ("expires_at", "family_id", "user_id"):
        op.create_index(op.f(f"ix_refresh_tokens_{column}"), "refresh_tokens", [column])
    op.create_table(
        "revoked_tokens",
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("expires_at", TIME(), nullable=False),
        sa.Column("revoked_at", TIME(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_revoked_tokens")),
        sa.UniqueConstraint("seq", name=op.f("uq_revoked_tokens_seq")),
    )
    op.create_index(op.f("ix_revoked_tokens_expires_at"), "revoked_tokens", ["expires_at"])
    op.create_table(
        "subject_not_before",
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("not_before", TIME(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_subject_not_before")),
        sa.UniqueConstraint("seq", name=op.f("uq_subject_not_before_seq")),
    )
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_counters")),
    )
    # The feed's counter row exists from the start: drawing a number is then one
    # UPDATE, whose row lock orders concurrent writers (see models.CounterRow).
    op.bulk_insert(counters, [{"name": "revocation_feed", "value": 0}])
    op.create_table(
        "audit_log",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("at", TIME(), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("client_address", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"])
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=510), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", TIME(), nullable=False),
        sa.Column("last_at", TIME(), nullable=False),
        sa.Column("locked_until", TIME(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_last_at"), "login_failures", ["last_at"])


def downgrade() -> None:
    # Tables referenced by foreign keys go last; indexes go with their tables.
    for table in (
        "login_failures",
        "audit_log",
        "counters",
        "subject_not_before",
        "revoked_tokens",
        "refresh_tokens",
        "signing_keys",
        "clients",
        "users",
    ):
        op.drop_table(table)
