"""Fixtures for the service tests: the asyncio backend and cheap argon2 parameters."""

from __future__ import annotations

import argon2
import pytest
from argon2.low_level import Type

#: argon2id at the smallest cost the library accepts a sensible hash for: tests stay fast
#: while exercising the same code path as production parameters.
CHEAP = argon2.Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=1,
    memory_cost=8,
    parallelism=1,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
