"""Where the throttle keeps its counters: the state value, the store protocol, a memory store.

The protocol is four calls (``get``, ``put``, ``delete``, ``prune``). ``Throttle``
serializes its read-modify-write of a counter per process; a store shared by several
processes (``DatabaseThrottleStore`` in ``throttle_db``) also provides ``update``, which
applies the change to each counter with no other writer in between, and ``get_many``;
``Throttle`` uses them for every failure and every check (``AtomicThrottleStore``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "AtomicThrottleStore",
    "MemoryThrottleStore",
    "StateChange",
    "ThrottleState",
    "ThrottleStore",
]


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """One counter. Times are seconds since the epoch (``Clock.now()``).

    ``expires_at`` is when the counter stops mattering under the policy that wrote it (the
    later of the end of the quiet window and the end of the lock), so a store can prune
    without knowing the policy.
    """

    count: int
    first_at: float
    last_at: float
    locked_until: float | None = None
    expires_at: float = 0.0


class ThrottleStore(Protocol):
    async def get(self, key: str) -> ThrottleState | None: ...

    async def put(self, key: str, state: ThrottleState) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def prune(self, now: float) -> int:
        """Delete every state with ``expires_at <= now``; return how many went."""
        ...


#: A counter's next state from its current one (None: no counter yet); pure, since a
#: store may apply it more than once.
StateChange = Callable[[ThrottleState | None], ThrottleState]


@runtime_checkable
class AtomicThrottleStore(ThrottleStore, Protocol):
    """A store shared by several processes: ``update`` is its atomic read-modify-write,
    ``get_many`` reads several counters in one consistent snapshot (and one round trip)."""

    async def get_many(self, keys: Iterable[str]) -> dict[str, ThrottleState]:
        """The states that exist among ``keys``."""
        ...

    async def update(self, changes: Mapping[str, StateChange]) -> dict[str, ThrottleState]:
        """Replace each key's state by ``change(state)``, all or nothing, with no other
        writer (in any process) between the read and the write; return the new states."""
        ...


class MemoryThrottleStore:
    """Counters in a dict, for one process, holding at most ``max_keys`` of them.

    When full, the least recently updated counter is evicted: an attacker spraying
    addresses (each a new key) cannot grow memory without bound. The price is that such a
    flood can evict an older counter, lock included; filling 100 000 keys takes 100 000
    failed logins, each paying a full argon2 verification, and the per-address limit stops
    a single address long before that.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._states: OrderedDict[str, ThrottleState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    async def get(self, key: str) -> ThrottleState | None:
        return self._states.get(key)

    async def put(self, key: str, state: ThrottleState) -> None:
        self._states[key] = state
        self._states.move_to_end(key)
        while len(self._states) > self.max_keys:
            self._states.popitem(last=False)

    async def delete(self, key: str) -> None:
        self._states.pop(key, None)

    async def prune(self, now: float) -> int:
        expired = [key for key, state in self._states.items() if state.expires_at <= now]
        for key in expired:
            del self._states[key]
        return len(expired)
