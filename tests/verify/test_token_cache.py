"""The verified-token cache: bounded, oldest out first, emptied with the key set."""

from __future__ import annotations

import pytest

from tokensmith.verify._token_cache import VerifiedTokenCache
from tokensmith.verify.claims import AccessClaims, access_claims


def claims(sub: str = "42") -> AccessClaims:
    return access_claims({"iss": "i", "sub": sub, "exp": 10})


def test_a_stored_token_is_one_lookup_away() -> None:
    cache = VerifiedTokenCache(10)
    entry = claims()
    cache.put("t1", entry, cache.generation)
    assert cache.get("t1") is entry and "t1" in cache
    assert cache.get("t2") is None


def test_the_cache_is_bounded_and_evicts_the_oldest() -> None:
    cache = VerifiedTokenCache(3)
    for name in ("a", "b", "c", "d"):
        cache.put(name, claims(name), cache.generation)
    assert len(cache) == 3
    assert "a" not in cache and all(name in cache for name in "bcd")
    cache.put("b", claims("b2"), cache.generation)  # a refresh does not evict
    assert len(cache) == 3 and "c" in cache


def test_a_reset_empties_the_cache_and_refuses_late_results() -> None:
    cache = VerifiedTokenCache(10)
    started = cache.generation
    cache.put("t1", claims(), started)
    cache.reset()
    assert len(cache) == 0
    # A verification that began under the old key set finishes after the reset.
    cache.put("t2", claims(), started)
    assert "t2" not in cache
    cache.put("t3", claims(), cache.generation)
    assert "t3" in cache


def test_a_size_of_zero_turns_the_cache_off() -> None:
    cache = VerifiedTokenCache(0)
    cache.put("t1", claims(), cache.generation)
    assert len(cache) == 0


@pytest.mark.parametrize("size", [-1, 1.5, "10"])
def test_bad_sizes_are_refused(size: object) -> None:
    with pytest.raises(ValueError):
        VerifiedTokenCache(size)  # type: ignore[arg-type]


def test_the_default_holds_ten_thousand() -> None:
    cache = VerifiedTokenCache()
    for i in range(10_001):
        cache.put(str(i), claims(), cache.generation)
    assert len(cache) == 10_000 and "0" not in cache and "10000" in cache
