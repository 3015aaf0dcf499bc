"""Every way of starting the server refuses what would damage or misread its data: the
app's lifespan (any ASGI server, each ``serve --workers`` worker) and ``build_services``
(the CLI, tests), not only the CLI's own checks.

- No new master key beside an existing database (``missing_key_file``).
- No schema at a revision this code does not know (``unknown_schema_revision``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import pytest

from tokensmith.server.app import build_services, create_app
from tokensmith.server.services import MissingKeyFile
from tokensmith.server.settings import Settings
from tokensmith.store import UnknownSchemaRevision

from .routes.conftest import CHEAP, ISSUER

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _settings(data_dir: Path) -> Settings:
    return Settings(issuer=ISSUER, data_dir=data_dir, signing_algorithms=("ES256",))


def _build(settings: Settings) -> AbstractAsyncContextManager[Any]:
    return build_services(settings, password_parameters=CHEAP)


def _lifespan(settings: Settings) -> AbstractAsyncContextManager[Any]:
    app = create_app(settings, password_parameters=CHEAP)
    return app.router.lifespan_context(app)


STARTS = pytest.mark.parametrize("start", [_build, _lifespan], ids=["build_services", "lifespan"])


async def _initialized(data_dir: Path) -> Settings:
    settings = _settings(data_dir)
    async with _build(settings):
        pass
    return settings


@STARTS
async def test_a_lost_key_file_is_not_replaced(
    tmp_path: Path, start: Callable[[Settings], AbstractAsyncContextManager[Any]]
) -> None:
    settings = await _initialized(tmp_path)
    key_file = tmp_path / "master.key"
    key_file.unlink()
    with pytest.raises(MissingKeyFile) as caught:
        async with start(settings):
            pytest.fail("the server started without its master key")
    assert caught.value.code == "missing_key_file"
    assert str(key_file) in caught.value.message
    assert not key_file.exists()  # the real one can still be restored


@STARTS
async def test_a_schema_newer_than_the_code_is_refused(
    tmp_path: Path, start: Callable[[Settings], AbstractAsyncContextManager[Any]]
) -> None:
    settings = await _initialized(tmp_path)
    database = tmp_path / "tokensmith.db"
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    connection.close()
    with pytest.raises(UnknownSchemaRevision) as caught:
        async with start(settings):
            pytest.fail("the server started on a schema it does not know")
    assert caught.value.code == "unknown_schema_revision"
    assert "'9999'" in caught.value.message
    assert str(tmp_path) not in caught.value.message
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("9999",)
        ]
    connection.close()
