"""The verified-token cache: a token seen before costs one dictionary lookup.

Keyed on the exact token string, so a hit is the very token whose signature and
claims were verified. Only what changes with time is checked again on a hit (exp,
nbf and the denylist, by the verifier). Bounded: the oldest entry goes first.

Entries belong to a key set. When the set changes (a key removed or revoked) the
cache is emptied, and a verification that started under the old set cannot store
its result afterwards: ``put`` carries the generation it started in.
"""

from __future__ import annotations

import threading
from collections import deque

from .claims import AccessClaims

__all__ = ["DEFAULT_TOKEN_CACHE_SIZE", "VerifiedTokenCache"]

DEFAULT_TOKEN_CACHE_SIZE = 10_000


class VerifiedTokenCache:
    """token -> AccessClaims, at most ``max_entries`` of them (0 disables the cache)."""

    __slots__ = ("_entries", "_lock", "_order", "generation", "get", "max_entries")

    def __init__(self, max_entries: int = DEFAULT_TOKEN_CACHE_SIZE) -> None:
        if type(max_entries) is not int or max_entries < 0:
            raise ValueError("max_entries must be a non-negative integer")
        self.max_entries = max_entries
        self._entries: dict[str | bytes, AccessClaims] = {}
        # Insertion order for eviction. Not the dict's own order: deleting its first key
        # leaves a dummy slot that every later next(iter(dict)) walks past, so FIFO
        # eviction on a dict alone grows slower with every eviction.
        self._order: deque[str | bytes] = deque()
        # Writers take the lock; readers do not (a dict lookup is atomic).
        self._lock = threading.Lock()
        #: Bumped by ``reset``; a ``put`` from an older generation is dropped.
        self.generation = 0
        #: The hit path: the dict's own ``get``, bound once (the dict is never replaced).
        self.get = self._entries.get

    def put(self, token: str | bytes, claims: AccessClaims, generation: int) -> None:
        if self.max_entries == 0:
            return
        entries = self._entries
        with self._lock:
            if generation != self.generation:
                return
            if token in entries:
                entries[token] = claims
                return
            if len(entries) >= self.max_entries:
                del entries[self._order.popleft()]
            entries[token] = claims
            self._order.append(token)

    def reset(self) -> None:
        """Forget every entry (the key set changed)."""
        with self._lock:
            self.generation += 1
            self._entries.clear()
            self._order.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: object) -> bool:
        return token in self._entries
