"""The throttle's rules, as pure functions: state and time in, state or decision out.

``ThrottlePolicy`` holds the knobs; ``decide`` says whether an attempt may go ahead,
``record_failure`` and ``record_success`` give a counter's next state, ``delay_after`` the
wait after a number of failures. ``Throttle`` (``throttle``) runs them over a store; the
counters and their effects are described there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from .throttle_store import ThrottleState

__all__ = [
    "Decision",
    "Scope",
    "ThrottlePolicy",
    "ThrottleReason",
    "decide",
    "delay_after",
    "record_failure",
    "record_success",
    "with_pending",
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
