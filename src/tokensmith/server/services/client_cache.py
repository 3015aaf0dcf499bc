"""Client rows kept in memory for a few seconds, so authenticating a client reads no database.

``ClientService.authenticate`` asks the cache first and reads the row only on a miss.
What it caches is the row (``Client``: the secret's hash, grants, scopes, the disabled
flag), never a verdict: the secret is compared against the hash on every request.

- **Freshness.** An entry is served for ``ttl`` seconds after the read that produced it
  (``client_cache_ttl``, default 5 s; 0 turns the cache off). ``ClientService``
  invalidates the entry on every change it makes (create, reset_secret, set_disabled,
  set_audiences), so changes made through this process apply at once. A change made by
  another process (the CLI, another worker or instance) reaches this one within ``ttl``:
  until then a disabled client, or the secret before a reset, still authenticates here.
- **Races.** A read that began before an invalidation is not stored (a generation count),
  so a row read just before a change commits cannot outlive the change here.
- **Bounded.** Only registered clients are cached; an unknown id is read every time (and
  counted by the client throttle), so a stream of made-up ids costs no memory. At most
  ``max_entries`` rows are kept, least recently used evicted first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from tokensmith.store import Client

__all__ = ["ClientCache", "Ticket"]


@dataclass(frozen=True, slots=True)
class Ticket:
    """Taken before a read: the row it yields is stored only if nothing changed since."""

    generation: int
    read_at: float


class ClientCache:
    """A bounded LRU of client rows with a TTL; ``clock``: monotonic seconds (tests inject one)."""

    def __init__(
        self,
        ttl: float = 5.0,
        max_entries: int = 1024,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.ttl = float(ttl)
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Client]] = OrderedDict()
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"ClientCache(ttl={self.ttl}, entries={len(self._entries)}/{self.max_entries})"

    def get(self, client_id: str) -> Client | None:
        """The cached row, if one is fresh; None on a miss (read the database then)."""
        entry = self._entries.get(client_id)
        if entry is None:
            return None
        expires_at, client = entry
        if self._clock() >= expires_at:
            del self._entries[client_id]
            return None
        self._entries.move_to_end(client_id)
        return client

    def ticket(self) -> Ticket:
        """Take one before reading a row from the database; hand it to ``put``."""
        return Ticket(self._generation, self._clock())

    def put(self, client: Client, ticket: Ticket) -> None:
        """Keep a row read under ``ticket`` until ``ticket.read_at + ttl``, unless a change
        was made in the meantime (the row may predate it) or the cache is off."""
        if self.ttl <= 0 or ticket.generation != self._generation:
            return
        expires_at = ticket.read_at + self.ttl
        if self._clock() >= expires_at:
            return
        self._entries[client.client_id] = (expires_at, client)
        self._entries.move_to_end(client.client_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def invalidate(self, client_id: str | None = None) -> None:
        """Forget one client's row (or every row), and refuse rows read before this call."""
        self._generation += 1
        if client_id is None:
            self._entries.clear()
        else:
            self._entries.pop(client_id, None)
