"""Time and randomness as parameters, so tests walk timelines without sleeping."""

from __future__ import annotations

import os
import time
from typing import Protocol

__all__ = ["Clock", "FixedClock", "RandomSource", "SystemClock", "system_random"]


class Clock(Protocol):
    """Anything with ``now()``: seconds since the Unix epoch."""

    def now(self) -> float: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> float:
        return time.time()


class FixedClock:
    """A clock that shows what it is told; tests move it with ``advance``."""

    def __init__(self, now: float) -> None:
        self._now = float(now)

    def now(self) -> float:
        return self._now

    def set(self, now: float) -> None:
        self._now = float(now)

    def advance(self, seconds: float) -> None:
        self._now += seconds


class RandomSource(Protocol):
    """A callable returning ``n`` random bytes, like ``os.urandom``."""

    def __call__(self, n: int, /) -> bytes: ...


system_random: RandomSource = os.urandom
