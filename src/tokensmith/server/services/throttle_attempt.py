"""An admitted credential check (``Attempt``) and the per-pair gates that serialize them.

Split from ``throttle`` to keep the decision rules apart from the bookkeeping of the
attempts in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

if TYPE_CHECKING:
    from .throttle import Decision, Throttle

__all__ = ["Attempt", "Gates"]


@dataclass(slots=True)
class Attempt:
    """One credential check admitted by ``Throttle.begin``; settle it exactly once.

    Until settled it holds its (username, address) pair's gate, so attempts of one pair
    run one at a time: a burst of concurrent guesses cannot all pass the throttle before
    the first of them is counted. It also counts as a failure in flight for its address.
    ``release`` (idempotent, no await: safe in a ``finally`` even when cancelled) ends it
    without a verdict.
    """

    decision: Decision
    _throttle: Throttle
    _username: str
    _address: str
    _keys: tuple[str, str]
    _open: bool = True

    async def failed(self) -> Decision:
        # Counted before released: for a moment it counts twice, never zero times.
        decision = await self._throttle.failed(self._username, self._address)
        self.release()
        return decision

    async def succeeded(self) -> None:
        # ``Throttle.succeeded`` by the keys ``begin`` already computed.
        await self._throttle._forget(self._keys[0])
        self.release()

    def release(self) -> None:
        if self._open and self.decision.allowed:
            self._throttle._settle(self._keys)
        self._open = False


class Gates:
    """One lock per key, kept only while someone holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    async def acquire(self, key: str) -> None:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            # No yield to the event loop when the pair has no attempt in flight.
            lock = anyio.Lock(fast_acquire=True)
        self._locks[key] = (lock, users + 1)
        try:
            await lock.acquire()
        except BaseException:
            self._drop(key)
            raise

    def release(self, key: str) -> None:
        self._locks[key][0].release()
        self._drop(key)

    def _drop(self, key: str) -> None:
        lock, users = self._locks[key]
        if users > 1:
            self._locks[key] = (lock, users - 1)
        else:
            del self._locks[key]
