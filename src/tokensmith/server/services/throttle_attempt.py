"""An admitted credential check (``Attempt``); the per-pair gates are in ``throttle_gates``.

Split from ``throttle`` to keep the decision rules apart from the bookkeeping of the
attempts in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .throttle import Throttle
    from .throttle_policy import Decision

__all__ = ["Attempt"]


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
