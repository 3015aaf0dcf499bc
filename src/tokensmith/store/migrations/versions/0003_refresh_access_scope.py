"""refresh_tokens remembers the scope of the access token issued with each token.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

A repeat inside the refresh grace window answers the pair the first use returned. The
access token is signed again from the row (same jti, iat and exp), and its scope was
taken from the repeated request: a twin asking another scope got a different token
under the same jti. ``access_scope`` keeps the scope the first answer carried. Rows
written before this revision have none (NULL); a repeat of one of those narrows as
before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("access_scope", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("access_scope")
