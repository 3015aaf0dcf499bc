"""Schema migrations, applied from code: ``tokensmith init`` and ``serve`` call ``upgrade``.

The Alembic environment and revisions ship inside the package
(``tokensmith/store/migrations``) and the configuration is built here, so no
``alembic.ini`` is needed at run time. Upgrading is idempotent, and on SQLite
it runs in one ``BEGIN IMMEDIATE`` transaction (DDL is transactional there):
two processes starting at once apply it once, and a failed upgrade leaves the
schema as it was. A database at a revision these migrations do not know (a newer
tokensmith upgraded it) is ``UnknownSchemaRevision``, and nothing is changed.

For development, a new revision is generated against a database at head::

    from alembic import command
    command.revision(make_config("sqlite+aiosqlite:///dev.db"), "message", autogenerate=True)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from .database import Database, create_engine, translate_unavailable, write_options
from .errors import UnknownSchemaRevision

__all__ = ["current_revision", "head_revision", "make_config", "upgrade", "upgrade_sync"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def make_config(url: str | None = None) -> Config:
    """An Alembic configuration for the packaged migrations, optionally bound to ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        # ConfigParser interpolation would read a "%" in a password as a reference.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    """The revision this code expects the schema to be at."""
    head = ScriptDirectory.from_config(make_config()).get_current_head()
    assert head is not None, "the packaged migrations have a single head"
    return head


async def upgrade(target: str | AsyncEngine | Database, revision: str = "head") -> None:
    """Bring the schema at ``target`` (URL, engine or Database) up to ``revision``.

    A database that cannot be opened, stays locked or is no database raises
    ``DatabaseUnavailable``, as ``Database.transaction()`` does. One whose schema is at
    a revision the packaged migrations do not know raises ``UnknownSchemaRevision``
    (where Alembic would raise its ``CommandError``), and is left as it was.
    """
    engine, owned = _engine(target)
    try:
        async with translate_unavailable(), engine.connect() as connection:
            connection = await connection.execution_options(**write_options(engine))
            async with connection.begin():
                await connection.run_sync(_upgrade, revision)
    finally:
        if owned:
            await engine.dispose()


def upgrade_sync(url: str, revision: str = "head") -> None:
    """``upgrade`` for synchronous callers (the CLI); not from inside an event loop."""
    asyncio.run(upgrade(url, revision))


async def current_revision(target: str | AsyncEngine | Database) -> str | None:
    """The revision the schema is at; None for an empty database."""
    engine, owned = _engine(target)
    try:
        async with translate_unavailable(), engine.connect() as connection:
            return await connection.run_sync(_current)
    finally:
        if owned:
            await engine.dispose()


def _engine(target: str | AsyncEngine | Database) -> tuple[AsyncEngine, bool]:
    if isinstance(target, Database):
        return target.engine, False
    if isinstance(target, AsyncEngine):
        return target, False
    return create_engine(target), True


def _upgrade(connection: Connection, revision: str) -> None:
    config = make_config()
    _check_known(connection, ScriptDirectory.from_config(config))
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _check_known(connection: Connection, scripts: ScriptDirectory) -> None:
    """Refuse a schema at a revision the packaged migrations do not have."""
    known = {script.revision for script in scripts.walk_revisions()}
    current = MigrationContext.configure(connection).get_current_heads()
    unknown = [revision for revision in current if revision not in known]
    if unknown:
        # The revision comes from the database; the URL (it may hold a password) is never
        # named, and neither is Alembic's text, which may quote it.
        shown = ", ".join(repr(revision) for revision in unknown)
        raise UnknownSchemaRevision(
            f"the database schema is at revision {shown}, which this version of "
            "tokensmith does not know (was it upgraded by a newer one?)"
        )


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
