"""The throttle's pure rules (``throttle_policy``): delays, counting, locks, decisions."""

from __future__ import annotations

import pytest

from conftest import NOW
from tokensmith.server.services.throttle_policy import (
    Decision,
    Scope,
    ThrottlePolicy,
    ThrottleReason,
    decide,
    delay_after,
    record_failure,
    record_success,
)
from tokensmith.server.services.throttle_store import ThrottleState

POLICY = ThrottlePolicy()


def test_delay_after_grows_from_the_first_unfree_failure_and_is_capped() -> None:
    assert [delay_after(n, POLICY) for n in range(8)] == [0, 0, 0, 0, 0, 0, 2, 4]
    assert [delay_after(n, POLICY) for n in range(9, 13)] == [16, 32, 60, 60]
    assert delay_after(10**9, POLICY) == 60  # no float overflow for absurd counts
    assert delay_after(50, ThrottlePolicy(base_delay=0)) == 0
    assert delay_after(50, ThrottlePolicy(max_delay=0)) == 0  # the setting's "0s": no delays
    assert delay_after(6, ThrottlePolicy(base_delay=5, max_delay=3)) == 3


def test_decide_with_no_history_allows() -> None:
    assert decide(None, None, NOW, POLICY) == Decision(allowed=True)


def test_record_failure_starts_counts_and_forgets_after_a_quiet_window() -> None:
    s = record_failure(None, NOW, POLICY, Scope.USER_IP)
    assert s == ThrottleState(count=1, first_at=NOW, last_at=NOW, expires_at=NOW + 900)
    s = record_failure(s, NOW + 899, POLICY, Scope.USER_IP)
    assert (s.count, s.first_at, s.last_at) == (2, NOW, NOW + 899)
    # 900 s without a failure: the counter starts over.
    s = record_failure(s, NOW + 899 + 900, POLICY, Scope.USER_IP)
    assert (s.count, s.first_at) == (1, NOW + 1799)


def test_record_failure_locks_at_the_threshold_of_its_scope() -> None:
    pair = ThrottleState(count=19, first_at=NOW, last_at=NOW, expires_at=NOW + 900)
    locked = record_failure(pair, NOW + 1, POLICY, Scope.USER_IP)
    assert locked.locked_until == NOW + 1 + 900
    assert locked.expires_at == NOW + 901
    # 20 failures from one address are nowhere near the per-address threshold.
    assert record_failure(pair, NOW + 1, POLICY, Scope.IP).locked_until is None
    ip = ThrottleState(count=99, first_at=NOW, last_at=NOW)
    policy = ThrottlePolicy(ip_lock_seconds=3600)
    assert record_failure(ip, NOW + 1, policy, Scope.IP).locked_until == NOW + 1 + 3600


def test_record_success_resets_the_pair_but_not_the_address() -> None:
    s = ThrottleState(count=7, first_at=NOW, last_at=NOW, expires_at=NOW + 900)
    assert record_success(s, NOW + 1, POLICY, Scope.USER_IP) is None
    assert record_success(s, NOW + 1, POLICY, Scope.IP) == s
    assert record_success(s, NOW + 900, POLICY, Scope.IP) is None  # forgotten anyway


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    pair = ThrottleState(count=6, first_at=NOW, last_at=NOW)  # must wait 2 s
    assert decide(pair, None, NOW + 1.7, POLICY).retry_after == 1
    assert decide(pair, None, NOW + 0.5, POLICY).retry_after == 2
    assert decide(pair, None, NOW + 2, POLICY).allowed


def test_the_longest_restriction_wins() -> None:
    pair = ThrottleState(count=6, first_at=NOW, last_at=NOW)  # delay: 2 s
    ip = ThrottleState(count=100, first_at=NOW, last_at=NOW, locked_until=NOW + 900)
    d = decide(pair, ip, NOW, POLICY)
    assert (d.reason, d.retry_after, d.until) == (ThrottleReason.IP_LOCKED, 900, NOW + 900)
    locked_pair = ThrottleState(count=20, first_at=NOW, last_at=NOW, locked_until=NOW + 950)
    assert decide(locked_pair, ip, NOW, POLICY).reason is ThrottleReason.LOCKED


@pytest.mark.parametrize(
    "kwargs",
    [
        {"free_failures": -1},
        {"base_delay": -1},
        {"max_delay": -1},
        {"free_failures": 20, "lock_threshold": 20},
        {"ip_threshold": 0},
        {"lock_seconds": 0},
        {"window": -5},
        {"ipv6_prefix": 129},
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        ThrottlePolicy(**kwargs)  # type: ignore[arg-type]
