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

The decision functions are pure (state and time in, state or decision out); ``Throttle``
runs them over a ``ThrottleStore``: ``MemoryThrottleStore`` (one process) or
``DatabaseThrottleStore`` (``throttle_db``: shared by every worker and instance), whose
atomic ``update`` makes failures counted in different processes add up.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import partial
from typing import cast

from tokensmith.clock import Clock, SystemClock

from .throttle_attempt import Attempt
from .throttle_gates import Gates, Mutex
from .throttle_keys import address_key, subject_key
from .throttle_store import AtomicThrottleStore, MemoryThrottleStore, ThrottleState, ThrottleStore

__all__ = [
    "AtomicThrottleStore",
    "Attempt",
    "Decision",
    "MemoryThrottleStore",
    "Scope",
    "Throttle",
    "ThrottleEvent",
    "ThrottlePolicy",
    "ThrottleReason",
    "ThrottleState",
    "ThrottleStore",
    "decide",
    "delay_after",
    "record_failure",
    "record_success",
]

# 2 ** 64 seconds is already past any cap; stops float overflow for absurd counts.
_MAX_EXPONENT = 64


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """The knobs; every time is in seconds. The defaults follow the token server issue."""

    free_failures: int = 5
    base_delay: float = 2.0
    max_delay: float = 60.0
    lock_threshold: int = 20
    lock_seconds: float = 900.0
    ip_threshold: int = 100
    ip_lock_seconds: float = 900.0
    window: float = 900.0
    #: IPv6 clients are counted per network of this prefix length: one host commonly owns
    #: a whole /64, so counting single addresses would let it rotate through 2**64 of them.
    ipv6_prefix: int = 64

    def __post_init__(self) -> None:
        if self.free_failures < 0:
            raise ValueError("free_failures must be >= 0")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("base_delay and max_delay must be >= 0 (max_delay=0: no delays)")
        if not self.free_failures < self.lock_threshold:
            raise ValueError("lock_threshold must exceed free_failures")
        if self.ip_threshold < 1:
            raise ValueError("ip_threshold must be >= 1")
        if min(self.lock_seconds, self.ip_lock_seconds, self.window) <= 0:
            raise ValueError("lock_seconds, ip_lock_seconds and window must be > 0")
        if not 0 <= self.ipv6_prefix <= 128:
            raise ValueError("ipv6_prefix must be within 0..128")


class Scope(StrEnum):
    USER_IP = "user_ip"
    IP = "ip"


class ThrottleReason(StrEnum):
    DELAY = "delay"  # the (username, address) pair must wait before its next attempt
    LOCKED = "locked"  # the (username, address) pair is locked
    IP_LOCKED = "ip_locked"  # the address is locked for every username
    BUSY = "busy"  # as many attempts in flight at the address as it has failures left


@dataclass(frozen=True, slots=True)
class Decision:
    """``allowed``, or refused with ``retry_after`` (whole seconds >= 1, for the
    Retry-After header), the ``reason`` and the instant ``until`` which it holds."""

    allowed: bool
    retry_after: int = 0
    reason: ThrottleReason | None = None
    until: float | None = None


ALLOW = Decision(allowed=True)


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


def delay_after(failures: int, policy: ThrottlePolicy) -> float:
    """Seconds to wait after the ``failures``-th failure before the next attempt."""
    excess = failures - policy.free_failures
    if excess <= 0 or policy.base_delay == 0:
        return 0.0
    return min(policy.max_delay, policy.base_delay * 2.0 ** min(excess - 1, _MAX_EXPONENT))


def _live(state: ThrottleState | None, now: float, policy: ThrottlePolicy) -> ThrottleState | None:
    """The state if it still counts at ``now``; None once forgotten."""
    if state is None:
        return None
    if state.locked_until is not None and state.locked_until > now:
        return state
    if now - state.last_at >= policy.window:
        return None
    return state


def _refuse(reason: ThrottleReason, until: float, now: float) -> Decision:
    # Rounded first so float noise (900.0000000001) does not add a second.
    retry_after = max(1, math.ceil(round(until - now, 6)))
    return Decision(allowed=False, retry_after=retry_after, reason=reason, until=until)


def decide(
    state_user_ip: ThrottleState | None,
    state_ip: ThrottleState | None,
    now: float,
    policy: ThrottlePolicy,
) -> Decision:
    """May the pair attempt a credential check at ``now``? The longest restriction wins."""
    refusals: list[Decision] = []
    ip = _live(state_ip, now, policy)
    if ip is not None and ip.locked_until is not None and ip.locked_until > now:
        refusals.append(_refuse(ThrottleReason.IP_LOCKED, ip.locked_until, now))
    pair = _live(state_user_ip, now, policy)
    if pair is not None:
        if pair.locked_until is not None and pair.locked_until > now:
            refusals.append(_refuse(ThrottleReason.LOCKED, pair.locked_until, now))
        else:
            wait_until = pair.last_at + delay_after(pair.count, policy)
            if wait_until > now:
                refusals.append(_refuse(ThrottleReason.DELAY, wait_until, now))
    if not refusals:
        return ALLOW
    return max(refusals, key=lambda d: d.retry_after)


def record_failure(
    state: ThrottleState | None, now: float, policy: ThrottlePolicy, scope: Scope
) -> ThrottleState:
    """The counter after one more failure at ``now``, locked if it reached its threshold."""
    live = _live(state, now, policy)
    if live is None:
        live = ThrottleState(count=0, first_at=now, last_at=now)
    count = live.count + 1
    threshold, lock_for = (
        (policy.lock_threshold, policy.lock_seconds)
        if scope is Scope.USER_IP
        else (policy.ip_threshold, policy.ip_lock_seconds)
    )
    locked_until = live.locked_until
    if count >= threshold and (locked_until is None or locked_until <= now):
        locked_until = now + lock_for
    expires_at = max(now + policy.window, locked_until or 0.0)
    return replace(live, count=count, last_at=now, locked_until=locked_until, expires_at=expires_at)


def record_success(
    state: ThrottleState | None, now: float, policy: ThrottlePolicy, scope: Scope
) -> ThrottleState | None:
    """The counter after a successful check: the pair starts over (None: delete it).

    The address counter is kept: one success there proves only that someone at the
    address knows one password, and resetting it would let a sprayer who owns a single
    account clear the per-address limit by logging in between guesses.
    """
    if scope is Scope.USER_IP:
        return None
    return _live(state, now, policy)


def with_pending(
    state: ThrottleState | None, pending: int, now: float, policy: ThrottlePolicy, scope: Scope
) -> ThrottleState | None:
    """The counter as if the ``pending`` attempts in flight had all failed at ``now``."""
    for _ in range(pending):
        state = record_failure(state, now, policy, scope)
    return state


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
