"""The key-ring settings the deployment last started with.

A server start notes the settings it plans its key ring from: the signing algorithms,
the pre-publication period and the rotation period. A key command run with other
settings (a CLI without the server's ``--config``) would plan the ring otherwise under
the running server: retire a ring it signs with, make keys of an algorithm it does not
use, activate a key before verifiers' caches know it. The command compares its own
settings with these and refuses a difference. Three rows of the ``counters`` table;
the algorithms are stored as a bit set of their names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import check_count, rowcount
from .models import CounterRow, table_of

__all__ = ["KeySettings", "KeySettingsRepository"]

# Fixed bits: a stored set must read the same after a release adds an algorithm.
_ALGORITHM_BITS = {"RS256": 1, "ES256": 2, "EdDSA": 4, "HS256": 8}
_ALGORITHMS = "key_algorithms"
_PREPUBLISH = "key_prepublish"
_ROTATION_PERIOD = "key_rotation_period"

_counters = table_of(CounterRow)
_SELECT = select(_counters.c.name, _counters.c.value).where(
    _counters.c.name.in_((_ALGORITHMS, _PREPUBLISH, _ROTATION_PERIOD))
)


@dataclass(frozen=True, slots=True)
class KeySettings:
    algorithms: frozenset[str]
    prepublish: int
    rotation_period: int

    @classmethod
    def of(cls, algorithms: Iterable[str], prepublish: int, rotation_period: int) -> KeySettings:
        names = frozenset(algorithms)
        unknown = names - _ALGORITHM_BITS.keys()
        if unknown or not names:
            raise ValueError(f"unknown or no signing algorithms: {sorted(unknown)}")
        check_count("prepublish", prepublish, minimum=1)
        check_count("rotation_period", rotation_period, minimum=1)
        return cls(names, prepublish, rotation_period)


class KeySettingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def stored(self) -> KeySettings | None:
        """The settings last recorded; None before the first record (or a row missing)."""
        rows = {row.name: int(row.value) for row in await self.session.execute(_SELECT)}
        if len(rows) < 3:
            return None
        bits = rows[_ALGORITHMS]
        names = frozenset(name for name, bit in _ALGORITHM_BITS.items() if bits & bit)
        return KeySettings(names, rows[_PREPUBLISH], rows[_ROTATION_PERIOD])

    async def record(self, settings: KeySettings) -> None:
        """Note ``settings`` as the deployment's (call it in a write transaction)."""
        bits = sum(_ALGORITHM_BITS[name] for name in settings.algorithms)
        for name, value in (
            (_ALGORITHMS, bits),
            (_PREPUBLISH, settings.prepublish),
            (_ROTATION_PERIOD, settings.rotation_period),
        ):
            await self._put(name, value)

    async def _put(self, name: str, value: int) -> None:
        if await self._update(name, value):
            return
        try:
            # Another instance starting at once may insert it first (PostgreSQL): then
            # its row is there to update, and the last start's settings stand.
            async with self.session.begin_nested():
                await self.session.execute(insert(_counters).values(name=name, value=value))
        except IntegrityError:
            await self._update(name, value)

    async def _update(self, name: str, value: int) -> bool:
        change = update(_counters).where(_counters.c.name == name).values(value=value)
        return rowcount(await self.session.execute(change)) > 0
