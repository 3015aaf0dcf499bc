"""The denylist: revoked jtis drop out at their expiry; not-before times per subject."""

from __future__ import annotations

import pytest

from tokensmith.verify import Denylist
from tokensmith.verify.denylist import DenylistFull

T = 1_000_000


def test_a_revoked_jti_is_refused() -> None:
    denylist = Denylist()
    assert not denylist
    denylist.revoke("j1", T + 900)
    assert denylist and len(denylist) == 1
    assert denylist.refuses("j1", "42", T)
    assert not denylist.refuses("j2", "42", T)
    assert not denylist.refuses(None, "42", T)


def test_entries_drop_out_at_expiry_plus_leeway() -> None:
    denylist = Denylist(leeway=60)
    denylist.revoke("j1", T + 100)
    denylist.revoke("j2", T + 200)
    assert denylist.prune(T + 159) == 0
    assert denylist.prune(T + 160) == 1
    assert "j1" not in denylist.revoked and "j2" in denylist.revoked
    assert denylist.prune(T + 10_000) == 1
    assert len(denylist) == 0


def test_memory_follows_the_live_revocations() -> None:
    denylist = Denylist()
    for i in range(10_000):
        denylist.revoke(f"j{i}", T + i)
    assert denylist.prune(T + 9_000) == 9_001  # j0 .. j9000: exp <= now
    assert len(denylist.revoked) == 999
    assert len(denylist._jti_expiry) == 999


def test_a_later_expiry_for_the_same_jti_wins() -> None:
    denylist = Denylist()
    denylist.revoke("j1", T + 100)
    denylist.revoke("j1", T + 500)
    denylist.revoke("j1", T + 50)  # an older entry seen again changes nothing
    assert denylist.prune(T + 100) == 0
    assert denylist.refuses("j1", "42", T)
    assert denylist.prune(T + 500) == 1


def test_not_before_refuses_tokens_issued_earlier() -> None:
    denylist = Denylist()
    denylist.set_not_before("42", T)
    assert denylist.refuses("j", "42", T - 1)
    assert not denylist.refuses("j", "42", T)  # same second: caught by its jti instead
    assert not denylist.refuses("j", "42", T + 1)
    assert denylist.refuses("j", "42", None)  # no iat: cannot show it is newer
    assert not denylist.refuses("j", "7", T - 1)  # another subject


def test_not_before_only_moves_forward() -> None:
    denylist = Denylist()
    denylist.set_not_before("42", T)
    denylist.set_not_before("42", T - 100)
    assert denylist.not_before["42"] == T
    denylist.set_not_before("42", T + 100)
    assert denylist.refuses("j", "42", T + 50)


def test_not_before_times_drop_out_after_the_retention() -> None:
    denylist = Denylist(not_before_retention=1000)
    denylist.set_not_before("42", T)
    denylist.set_not_before("7", T)
    denylist.set_not_before("7", T + 500)
    assert denylist.prune(T + 999) == 0
    assert denylist.prune(T + 1000) == 1
    assert "42" not in denylist.not_before and denylist.not_before["7"] == T + 500
    assert denylist.prune(T + 1500) == 1 and not denylist


@pytest.mark.parametrize("settings", [{"leeway": -1}, {"not_before_retention": float("nan")}])
def test_bad_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Denylist(**settings)


def test_a_full_denylist_refuses_new_entries_and_evicts_none() -> None:
    denylist = Denylist(max_entries=2)
    denylist.revoke("a", T + 10)
    denylist.set_not_before("42", T)
    assert denylist.room() == 0
    with pytest.raises(DenylistFull):
        denylist.revoke("b", T + 10)
    with pytest.raises(DenylistFull):
        denylist.set_not_before("43", T)
    denylist.revoke("a", T + 20)  # known entries may still move later
    denylist.set_not_before("42", T + 5)
    assert denylist.revoked == {"a": T + 20} and denylist.not_before == {"42": T + 5}
    denylist.prune(T + 21)
    denylist.revoke("b", T + 30)
    assert "b" in denylist.revoked


def test_the_expiry_heaps_stay_bounded_when_one_entry_moves_again_and_again() -> None:
    denylist = Denylist()
    for step in range(10_000):
        denylist.revoke("a", T + step)
        denylist.set_not_before("42", T + step)
    assert len(denylist._jti_expiry) <= 1026 and len(denylist._nbf_expiry) <= 1026
    assert denylist.prune(T + 9_999) == 1 and denylist.revoked == {}
    assert denylist.prune(T + 9_999 + 86_400 + 300) == 1 and not denylist


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_max_entries_must_be_a_positive_integer(value: object) -> None:
    with pytest.raises(ValueError):
        Denylist(max_entries=value)  # type: ignore[arg-type]
