"""Alembic environment: run by ``tokensmith.store.migrate`` with a connection it provides.

Without one (a developer running ``alembic.command.revision`` with
``migrate.make_config(url)``), it opens the URL itself. Batch mode renders
ALTERs that SQLite cannot do as copy-and-rename, and plain ALTERs on PostgreSQL.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from tokensmith.store.database import create_engine, write_options
from tokensmith.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            connection = await connection.execution_options(**write_options(engine))
            async with connection.begin():
                await connection.run_sync(_run)
    finally:
        await engine.dispose()


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
elif (provided := config.attributes.get("connection")) is not None:
    _run(provided)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection and no sqlalchemy.url: use tokensmith.store.migrate")
    asyncio.run(_run_with_url(url))
