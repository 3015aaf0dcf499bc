"""login_failures holds the throttle's state: float instants and an expiry to prune by.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07

The throttle's counters move from process memory to this table (a database
``ThrottleStore`` shared by every worker and instance), so a row must hold a
``ThrottleState`` exactly:

- ``first_at``, ``last_at`` and ``locked_until`` become float seconds (DOUBLE
  PRECISION on PostgreSQL, REAL on SQLite): whole seconds would end a delay up to a
  second early if rounded down, and refuse a free retry within the same second if
  rounded up;
- ``expires_at`` is new: when the counter stops mattering under the policy that wrote
  it. Pruning deletes by it (indexed), so the index on ``last_at`` goes.

Rows already present get the latest expiry any policy could have given them (a quiet
window of one day, the longest ``login_window_seconds`` allows, or the end of their
lock if later). Batch mode: SQLite copies the table, PostgreSQL runs plain ALTERs
(BIGINT to DOUBLE PRECISION is an implicit cast).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

INSTANT = sa.Double
TIME = sa.BigInteger
#: The longest quiet window the settings allow (login_window_seconds <= 1 day).
LONGEST_WINDOW = 86_400
TIMES = ("first_at", "last_at", "locked_until")

_failures = sa.table(
    "login_failures",
    sa.column("first_at"),
    sa.column("last_at"),
    sa.column("locked_until"),
    sa.column("expires_at"),
)


def upgrade() -> None:
    with op.batch_alter_table("login_failures") as batch:
        batch.drop_index("ix_login_failures_last_at")
        for name in TIMES:
            batch.alter_column(
                name,
                type_=INSTANT(),
                existing_type=TIME(),
                existing_nullable=name == "locked_until",
            )
        batch.add_column(sa.Column("expires_at", INSTANT(), nullable=True))
    window_end = _failures.c.last_at + LONGEST_WINDOW
    # CASE, not GREATEST/max(): the one spelling both databases accept. A NULL lock
    # compares as unknown, so the window end is taken.
    op.execute(
        _failures.update().values(
            expires_at=sa.case(
                (_failures.c.locked_until > window_end, _failures.c.locked_until),
                else_=window_end,
            )
        )
    )
    with op.batch_alter_table("login_failures") as batch:
        batch.alter_column("expires_at", existing_type=INSTANT(), nullable=False)
        batch.create_index(op.f("ix_login_failures_expires_at"), ["expires_at"])


def _ceil(column: sa.ColumnElement[float]) -> sa.ColumnElement[int]:
    # Portable ceil of a non-negative number: CAST truncates on SQLite and rounds on
    # PostgreSQL, and either way adding one when the cast fell short rounds up.
    whole = sa.cast(column, TIME())
    return whole + sa.case((column > whole, 1), else_=0)


def downgrade() -> None:
    # Back to whole seconds, rounded up: no lock or delay ends earlier than recorded.
    op.execute(_failures.update().values({name: _ceil(_failures.c[name]) for name in TIMES}))
    with op.batch_alter_table("login_failures") as batch:
        batch.drop_index("ix_login_failures_expires_at")
        batch.drop_column("expires_at")
        for name in TIMES:
            batch.alter_column(
                name,
                type_=TIME(),
                existing_type=INSTANT(),
                existing_nullable=name == "locked_until",
            )
        batch.create_index(op.f("ix_login_failures_last_at"), ["last_at"])
