"""Login throttling: growing delays, then a lock, per (username, address) and per address.

Two counters see every failed credential check:

- ``user:{username}|ip:{address}``: the first ``free_failures`` cost nothing, then each
  failure makes the next attempt wait ``base_delay`` doubling up to ``max_delay``; at
  ``lock_threshold`` failures the pair is locked for ``lock_seconds``. Keying by the pair
  means an attacker at one address cannot lock the real user out at another (the Keycloak
  lockout denial of service, GHSA-cq42-vhv7-xr7p).
- ``ip:{address}``: ``ip_threshold`` failures, whatever the usernames, lock the address for
  ``ip_lock_seconds``: a password sprayer trying one guess per username is stopped.

A counter is forgotten after ``window`` seconds without a failure (a lock lasts at least
its full length). When a lock ends before the counter is forgotten, one more failure locks
again at once. Every check of a credential (password grant, and client secrets with a
second ``Throttle(kind="client")``) must call ``check`` first and refuse with 429 and
Retry-After when it says no, without looking at the credential (CVE-2026-9798).

The decision functions are pure (``throttle_policy``: state and time in, state or decision
out); ``Throttle`` runs them over a ``ThrottleStore``: ``MemoryThrottleStore`` (one process)
or ``DatabaseThrottleStore`` (``throttle_db``: shared by every worker and instance), whose
atomic ``update`` makes failures counted in different processes add up.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import cast

from tokensmith.clock import Clock, SystemClock

from .throttle_attempt import Attempt
from .throttle_gates import Gates, Mutex
from .throttle_keys import address_key, subject_key
from .throttle_policy import (
    Decision,
    Scope,
    ThrottlePolicy,
    ThrottleReason,
    decide,
    record_failure,
    with_pending,
)
from .throttle_store import AtomicThrottleStore, MemoryThrottleStore, ThrottleState, ThrottleStore

__all__ = [
    "AtomicThrottleStore",
    "Attempt",
    "MemoryThrottleStore",
    "OnThrottled",
    "Throttle",
    "ThrottleEvent",
    "ThrottleState",
    "ThrottleStore",
]


@dataclass(frozen=True, slots=True)
class ThrottleEvent:
    """What ``on_throttled`` receives, once per throttle (a delay or lock period) and key."""

    kind: str  # the Throttle's kind: "user" or "client"
    username: str  # as the caller passed it
    address: str  # as the caller passed it
    reason: ThrottleReason
    retry_after: int
    until: float
    failures: int  # on the counter that throttles (the pair's, or the address's)
    at: float


OnThrottled = Callable[[ThrottleEvent], Awaitable[None]]


class Throttle:
    """The throttle service over a store: ``check`` before, ``failed``/``succeeded`` after.

    ``username`` is the normalized username (the users table's form); it is case-folded
    and NFKC-normalized again here, which never splits one name's counters, so a caller
    passing a raw name still cannot multiply its attempts with case variants. Unknown
    usernames are counted exactly like known ones: the throttle never asks whether the
    user exists, so its answers reveal nothing about it.
    """

    def __init__(
        self,
        store: ThrottleStore,
        policy: ThrottlePolicy | None = None,
        *,
        clock: Clock | None = None,
        on_throttled: OnThrottled | None = None,
        kind: str = "user",
        reported_capacity: int = 4096,
        count_in_flight: bool = True,
    ) -> None:
        self.store = store
        self.policy = policy or ThrottlePolicy()
        self.clock: Clock = clock or SystemClock()
        self.kind = kind
        # Worth it for passwords (a guess can succeed); client secrets are 256 random bits,
        # and services legitimately send many requests at once from one address.
        self.count_in_flight = count_in_flight
        self._on_throttled = on_throttled
        # One read-modify-write at a time in this process; concurrent failures would
        # otherwise be lost updates. Across processes the store's atomic update serializes.
        # No yield to the event loop when nobody holds it (the usual case): see throttle_gates.
        self._lock = Mutex()
        self._atomic = isinstance(store, AtomicThrottleStore)
        # Admitted attempts not yet settled: per address key, and a gate per pair.
        self._pending: dict[str, int] = {}
        self._gates = Gates()
        # Restrictions already reported, so a client hammering a lock adds one audit row
        # per lock, not one per request (bounded, like the store).
        self._reported: dict[tuple[str, float], None] = {}
        self._reported_capacity = reported_capacity

    def keys(self, username: str, address: str) -> tuple[str, str]:
        """The store keys of the pair counter and the address counter."""
        ip = address_key(address, self.policy.ipv6_prefix)
        return f"{self.kind}:{subject_key(username)}|ip:{ip}", f"ip:{ip}"

    async def check(self, username: str, address: str) -> Decision:
        """May this attempt go ahead? Call before looking at the credential."""
        now = self.clock.now()
        pair_key, ip_key = self.keys(username, address)
        pair, ip = await self._get_both(pair_key, ip_key)
        decision = decide(pair, ip, now, self.policy)
        await self._report(decision, username, address, pair, ip, now)
        return decision

    async def begin(self, username: str, address: str) -> Attempt:
        """``check`` that also admits the attempt: its ``decision`` says whether it may go
        ahead; if so, settle it with ``failed``, ``succeeded`` or ``release``.

        Waits while another attempt of the same pair is in flight. With
        ``count_in_flight``, the address's attempts in flight count as its failures until
        settled: one that only they would refuse is answered ``BUSY`` (retry in a second,
        not audited, since nothing has failed yet).
        """
        pair_key, ip_key = self.keys(username, address)
        await self._gates.acquire(pair_key)
        try:
            async with self._lock:
                now = self.clock.now()
                pair, ip = await self._get_both(pair_key, ip_key)
                decision = decide(pair, ip, now, self.policy)
                in_flight = self._pending.get(ip_key, 0)
                if decision.allowed and self.count_in_flight and in_flight:
                    busy = with_pending(ip, in_flight, now, self.policy, Scope.IP)
                    if not decide(pair, busy, now, self.policy).allowed:
                        decision = Decision(
                            allowed=False, retry_after=1, reason=ThrottleReason.BUSY
                        )
                if decision.allowed:
                    self._pending[ip_key] = in_flight + 1
        except BaseException:
            self._gates.release(pair_key)
            raise
        if not decision.allowed:
            self._gates.release(pair_key)
        await self._report(decision, username, address, pair, ip, now)
        return Attempt(decision, self, username, address, (pair_key, ip_key))

    async def _get_both(
        self, pair_key: str, ip_key: str
    ) -> tuple[ThrottleState | None, ThrottleState | None]:
        if self._atomic:  # one snapshot, one round trip
            found = await cast(AtomicThrottleStore, self.store).get_many((pair_key, ip_key))
            return found.get(pair_key), found.get(ip_key)
        return await self.store.get(pair_key), await self.store.get(ip_key)

    def _settle(self, keys: tuple[str, str]) -> None:
        pair_key, ip_key = keys
        left = self._pending.get(ip_key, 0) - 1
        if left > 0:
            self._pending[ip_key] = left
        else:
            self._pending.pop(ip_key, None)
        self._gates.release(pair_key)

    async def failed(self, username: str, address: str) -> Decision:
        """Count a failed check; returns what the next attempt will meet."""
        pair_key, ip_key = self.keys(username, address)
        async with self._lock:
            now = self.clock.now()
            fail_pair = partial(record_failure, now=now, policy=self.policy, scope=Scope.USER_IP)
            fail_ip = partial(record_failure, now=now, policy=self.policy, scope=Scope.IP)
            if self._atomic:
                # Counted by the store with no writer in between, whichever process.
                store = cast(AtomicThrottleStore, self.store)
                counted = await store.update({pair_key: fail_pair, ip_key: fail_ip})
                pair, ip = counted[pair_key], counted[ip_key]
            else:
                pair = fail_pair(await self.store.get(pair_key))
                ip = fail_ip(await self.store.get(ip_key))
                await self.store.put(pair_key, pair)
                await self.store.put(ip_key, ip)
        decision = decide(pair, ip, now, self.policy)
        await self._report(decision, username, address, pair, ip, now)
        return decision

    async def succeeded(self, username: str, address: str) -> None:
        """Forget the pair's failures (the address counter stays: see record_success)."""
        pair_key, _ = self.keys(username, address)
        await self._forget(pair_key)

    async def _forget(self, pair_key: str) -> None:
        await self.store.delete(pair_key)

    async def prune(self) -> int:
        """Drop forgotten counters; the server's maintenance job calls it periodically."""
        return await self.store.prune(self.clock.now())

    async def _report(
        self,
        decision: Decision,
        username: str,
        address: str,
        pair: ThrottleState | None,
        ip: ThrottleState | None,
        now: float,
    ) -> None:
        if decision.until is None or decision.reason is None or self._on_throttled is None:
            return
        by_ip = decision.reason is ThrottleReason.IP_LOCKED
        pair_key, ip_key = self.keys(username, address)
        key = (ip_key if by_ip else pair_key, decision.until)
        if key in self._reported:
            return
        counter = ip if by_ip else pair
        # Marked before the await: concurrent refusals of one lock must not each write a
        # row. Unmarked if delivery fails, so the next request offers it again.
        self._reported[key] = None
        try:
            await self._on_throttled(
                ThrottleEvent(
                    kind=self.kind,
                    username=username,
                    address=address,
                    reason=decision.reason,
                    retry_after=decision.retry_after,
                    until=decision.until,
                    failures=counter.count if counter is not None else 0,
                    at=now,
                )
            )
        except BaseException:
            self._reported.pop(key, None)
            raise
        while len(self._reported) > self._reported_capacity:
            del self._reported[next(iter(self._reported))]
