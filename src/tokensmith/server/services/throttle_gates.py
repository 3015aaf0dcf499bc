"""FIFO mutexes for the throttle: ``Gates`` (one per key, kept only while held) and ``Mutex``.

Every client_credentials request takes its (client, address) gate and the throttle's
lock once, nearly always uncontended, so the free path is one dict lookup and insert:
no lock object, no ``current_task`` lookup, no checkpoint (anyio's ``Lock`` costs all
three per call). A waiter's future is made only under contention.

The server runs on asyncio only (uvicorn ``loop="asyncio"``, every test's
``anyio_backend``), so plain asyncio futures are enough; they bind to no loop until
someone waits, and a key's queue lives only while the key is held.

Semantics, which the throttle relies on:

- one holder per key at a time; waiters are served in arrival order, and the gate is
  handed over by ``release`` (nobody can slip in between the release and the next
  waiter's wake-up);
- a waiter cancelled while it waits leaves the queue, and one cancelled after it was
  handed the gate (the future already has its result) passes it on: neither leaks it;
- ``release`` never awaits (safe in a ``finally`` of a cancelled task).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable

__all__ = ["Gates", "Mutex"]


class Gates:
    """One FIFO mutex per key; a key is present only while someone holds it."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        # key -> the futures of its waiters, oldest first; present while the key is held.
        self._held: dict[Hashable, deque[asyncio.Future[None]]] = {}

    def __len__(self) -> int:
        """How many keys are held (for tests: the gates must not leak)."""
        return len(self._held)

    def held(self, key: Hashable) -> bool:
        return key in self._held

    def waiting(self, key: Hashable) -> int:
        """How many wait for ``key`` (cancelled waiters not yet gone included)."""
        waiters = self._held.get(key)
        return 0 if waiters is None else len(waiters)

    async def acquire(self, key: Hashable) -> None:
        waiters = self._held.get(key)
        if waiters is None:
            self._held[key] = deque()  # free: taken without yielding to the event loop
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed the gate, then cancelled before running again: pass it on.
                self.release(key)
            else:
                try:
                    waiters.remove(waiter)
                except ValueError:  # already skipped by a release
                    pass
            raise

    def release(self, key: Hashable) -> None:
        """Hand the key to its oldest live waiter, or free it; ``KeyError`` if not held."""
        waiters = self._held[key]
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped (it cleans up itself)
                waiter.set_result(None)  # the key stays held: now by that waiter
                return
        del self._held[key]


class Mutex:
    """A FIFO lock with the semantics of ``Gates`` (``async with mutex: ...``)."""

    __slots__ = ("_gates",)

    def __init__(self) -> None:
        self._gates = Gates()

    def locked(self) -> bool:
        return self._gates.held(None)

    async def __aenter__(self) -> None:
        await self._gates.acquire(None)

    async def __aexit__(self, *exc_info: object) -> None:
        self._gates.release(None)
