"""Fixtures of the middleware tests: one issuer key pair per session, asyncio for anyio."""

from __future__ import annotations

import pytest

from .helpers import Keys, make_keys


@pytest.fixture(scope="session")
def keys() -> Keys:
    return make_keys()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
