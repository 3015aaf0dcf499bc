"""The JWKS cache machine walked along a timeline: no I/O, no sleeping, times given."""

from __future__ import annotations

import math

import httpx
import pytest

from tokensmith.jose import JWK, JWKSet
from tokensmith.verify import JWKSCacheMachine, JWKSCachePolicy
from tokensmith.verify._jwks_state import max_age_of, valid_etag

T0 = 1_000_000.0
POLICY = JWKSCachePolicy(
    min_refresh=60, max_refresh=3600, default_max_age=300, cooldown=30, stale_if_error=86_400
)


def body(*keys: JWK) -> bytes:
    return JWKSet([key.public() for key in keys]).to_json().encode()


def headers(max_age: int | None = 600, etag: str | None = '"v1"', **extra: str) -> httpx.Headers:
    values = dict(extra)
    if max_age is not None:
        values["Cache-Control"] = f"public, max-age={max_age}"
    if etag is not None:
        values["ETag"] = etag
    return httpx.Headers(values)


def loaded(key: JWK, max_age: int = 600) -> JWKSCacheMachine:
    machine = JWKSCacheMachine(POLICY)
    machine.begin_fetch(T0)
    outcome = machine.on_response(T0, 200, headers(max_age), body(key))
    assert outcome.changed
    return machine


# -- the policy ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [
        {"min_refresh": -1},
        {"min_refresh": 100, "max_refresh": 50},
        {"cooldown": math.nan},
        {"timeout": 0},
        {"stale_if_error": math.inf},
        {"max_bytes": 10},
    ],
)
def test_the_policy_refuses_bad_values(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        JWKSCachePolicy(**settings)


def test_the_policy_refuses_a_non_number() -> None:
    with pytest.raises(TypeError):
        JWKSCachePolicy(cooldown="30")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("max_age", "lifetime"),
    [(None, 300), (0, 60), (59, 60), (600, 600), (3600, 3600), (10**9, 3600)],
)
def test_max_age_is_clamped_to_the_bounds(max_age: float | None, lifetime: float) -> None:
    assert POLICY.lifetime(max_age) == lifetime


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, None),
        ({"Cache-Control": "public, max-age=600"}, 600),
        ({"Cache-Control": 'MAX-AGE="120"'}, 120),
        ({"Cache-Control": "max-age=600", "Age": "100"}, 500),
        ({"Cache-Control": "max-age=60", "Age": "100"}, 0),
        ({"Cache-Control": "no-store"}, 0),
        ({"Cache-Control": "public, no-cache, max-age=600"}, 0),
        ({"Cache-Control": "max-age=-5"}, None),
        ({"Cache-Control": "max-age=1e9"}, None),
        ({"Cache-Control": "public"}, None),
        # str.isdigit accepts these; float() does not. Unreadable counts as absent.
        ({"Cache-Control": "max-age=\u00b2"}, None),
        ({"Cache-Control": "max-age=\u0663"}, None),
        ({"Cache-Control": "max-age=600", "Age": "\u00b2"}, 600),
        ({"Cache-Control": "max-age=" + "9" * 400}, 2_147_483_648),
        ({"Cache-Control": "max-age=600", "Age": "9" * 400}, 0),
    ],
)
def test_max_age_of_a_response(values: dict[str, str], expected: float | None) -> None:
    # As bytes: a server may send anything, and httpx decodes it (UTF-8 here).
    assert max_age_of(httpx.Headers({k: v.encode() for k, v in values.items()})) == expected


# -- freshness --------------------------------------------------------------------------


def test_an_empty_cache_must_fetch(es_key: JWK) -> None:
    machine = JWKSCacheMachine(POLICY)
    assert machine.usable_keys(T0) is None
    assert machine.refresh_due(T0)
    state = machine.state(T0)
    assert not state.fresh and not state.stale
    assert state.key_ids == () and state.last_fetch is None and state.last_attempt is None


def test_a_fetched_set_is_fresh_for_its_max_age(es_key: JWK) -> None:
    machine = loaded(es_key, max_age=600)
    keys = machine.usable_keys(T0)
    assert keys is not None and "key-1" in keys
    assert not machine.refresh_due(T0 + 599)
    assert machine.recheck_at(T0 + 10) == T0 + 600
    assert machine.refresh_due(T0 + 600)
    state = machine.state(T0 + 1)
    assert state.fresh and not state.stale
    assert state.fresh_until == T0 + 600 and state.last_fetch == T0
    assert state.key_ids == ("key-1",) and state.last_error is None


def test_a_server_max_age_of_zero_is_raised_to_min_refresh(es_key: JWK) -> None:
    machine = loaded(es_key, max_age=0)
    assert not machine.refresh_due(T0 + 59)
    assert machine.refresh_due(T0 + 60)


def test_a_huge_max_age_is_cut_to_max_refresh(es_key: JWK) -> None:
    machine = loaded(es_key, max_age=10**8)
    assert not machine.refresh_due(T0 + 3599)
    assert machine.refresh_due(T0 + 3600)


def test_the_state_names_keys_never_key_material(es_key: JWK) -> None:
    state = loaded(es_key).state(T0)
    public = es_key.public().to_dict()
    assert public["x"] not in repr(state) and public["y"] not in repr(state)


# -- the cooldown ---------------------------------------------------------------------


def test_a_fetch_opens_the_cooldown(es_key: JWK) -> None:
    machine = loaded(es_key)
    assert not machine.may_fetch(T0 + 29.9)
    assert machine.state(T0 + 10).cooling_down_until == T0 + 30
    assert machine.may_fetch(T0 + 30)
    assert machine.state(T0 + 30).cooling_down_until is None


def test_a_due_refresh_waits_for_the_cooldown_after_a_failure(es_key: JWK) -> None:
    machine = loaded(es_key, max_age=60)
    machine.begin_fetch(T0 + 60)
    machine.on_failure(T0 + 61, "HTTP 500")
    assert not machine.refresh_due(T0 + 89)
    assert machine.refresh_due(T0 + 90)
    # Serving stale: ask again at the next retry, not on every request.
    assert machine.recheck_at(T0 + 70) == T0 + 90


# -- conditional requests -------------------------------------------------------------


def test_if_none_match_is_sent_once_a_set_and_its_tag_are_held(es_key: JWK) -> None:
    machine = JWKSCacheMachine(POLICY)
    assert "If-None-Match" not in machine.begin_fetch(T0)
    machine.on_response(T0, 200, headers(etag='"v1"'), body(es_key))
    assert machine.begin_fetch(T0 + 700)["If-None-Match"] == '"v1"'


@pytest.mark.parametrize(
    ("etag", "kept"),
    [
        ('"v1"', True),
        ('W/"v1"', True),
        ('""', True),
        ('"' + "a" * 254 + '"', True),
        ('"' + "a" * 255 + '"', False),
        ('"\u00e9"', False),
        ('"a"b"', False),
        ("v1", False),
        ('"v1" ', False),
        ('w/"v1"', False),
        ('"a\x00"', False),
    ],
)
def test_only_an_etag_that_can_be_sent_back_is_kept(es_key: JWK, etag: str, kept: bool) -> None:
    assert (valid_etag(etag) == etag) is kept
    machine = JWKSCacheMachine(POLICY)
    machine.begin_fetch(T0)
    machine.on_response(T0, 200, {"cache-control": "max-age=600", "etag": etag}, body(es_key))
    assert machine.begin_fetch(T0 + 700).get("If-None-Match") == (etag if kept else None)


def test_a_remote_set_keeps_public_halves_and_names_the_private_ones(es_key: JWK) -> None:
    machine = JWKSCacheMachine(POLICY)
    machine.begin_fetch(T0)
    document = JWKSet([es_key]).to_json(private=True).encode()
    outcome = machine.on_response(T0, 200, headers(), document)
    assert outcome.changed and outcome.dropped_private == ("key-1",)
    assert machine.keys is not None and not machine.keys["key-1"].is_private
    # The same body again is not parsed again, so it is not reported again.
    again = machine.on_response(T0 + 700, 200, headers(), document)
    assert not again.changed and again.dropped_private == ()


def test_a_304_renews_freshness_and_keeps_the_same_set(es_key: JWK) -> None:
    machine = loaded(es_key)
    before = machine.keys
    machine.begin_fetch(T0 + 700)
    outcome = machine.on_response(T0 + 700, 304, headers(max_age=600), b"")
    assert not outcome.changed and outcome.error is None
    assert machine.keys is before
    assert machine.state(T0 + 700).fresh_until == T0 + 1300
    assert machine.state(T0 + 700).last_fetch == T0 + 700


def test_a_304_without_a_held_set_is_a_failure() -> None:
    machine = JWKSCacheMachine(POLICY)
    machine.begin_fetch(T0)
    outcome = machine.on_response(T0, 304, headers(), b"")
    assert outcome.error is not None and "304" in outcome.error
    assert machine.usable_keys(T0) is None


def test_an_identical_body_keeps_the_same_set_object(es_key: JWK) -> None:
    machine = loaded(es_key)
    before = machine.keys
    outcome = machine.on_response(T0 + 700, 200, headers(etag=None), body(es_key))
    assert not outcome.changed and machine.keys is before


def test_a_new_body_replaces_the_set_and_removed_keys_go(es_key: JWK, es_key_2: JWK) -> None:
    machine = loaded(es_key)
    outcome = machine.on_response(T0 + 700, 200, headers(etag='"v2"'), body(es_key_2))
    assert outcome.changed
    keys = machine.usable_keys(T0 + 700)
    assert keys is not None and "key-2" in keys and "key-1" not in keys


# -- failures and stale-if-error -------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "content", "reason"),
    [
        (500, b"", "HTTP 500"),
        (302, b"", "redirect refused (HTTP 302)"),
        (200, b"<html>oops</html>", "not a valid JWK Set"),
        (200, b'{"keys": "nope"}', "not a valid JWK Set"),
        (200, b'{"keys": [{"kty": "RSA", "n": "AQAB"}]}', "not a valid JWK Set"),
    ],
)
def test_a_bad_answer_keeps_the_last_good_set(
    es_key: JWK, status: int, content: bytes, reason: str
) -> None:
    machine = loaded(es_key, max_age=60)
    before = machine.keys
    machine.begin_fetch(T0 + 60)
    outcome = machine.on_response(T0 + 60, status, headers(), content)
    assert outcome.error is not None and outcome.error.startswith(reason)
    assert not outcome.changed and machine.keys is before
    assert machine.usable_keys(T0 + 61) is before
    state = machine.state(T0 + 61)
    assert state.stale and not state.fresh and state.last_error == outcome.error


def test_an_outage_is_reported_once_and_its_end_once(es_key: JWK) -> None:
    machine = loaded(es_key, max_age=60)
    first = machine.on_failure(T0 + 60, "timed out")
    later = [machine.on_failure(T0 + 60 + 30 * i, "timed out") for i in range(1, 5)]
    assert first.first_failure
    assert not any(outcome.first_failure for outcome in later)
    back = machine.on_response(T0 + 300, 304, headers(), b"")
    assert back.recovered and machine.state(T0 + 300).last_error is None
    assert machine.on_failure(T0 + 400, "timed out").first_failure


def test_a_stale_set_serves_until_the_stale_window_ends(es_key: JWK) -> None:
    machine = loaded(es_key, max_age=60)
    machine.on_failure(T0 + 60, "HTTP 503")
    end = T0 + 60 + 86_400
    assert machine.usable_keys(end - 1) is not None
    assert machine.recheck_at(end - 1) <= end
    assert machine.usable_keys(end) is None
    state = machine.state(end)
    assert not state.fresh and not state.stale and state.stale_until == end
    # The key ids are still shown, and a 304 from a recovered server revives the set.
    assert state.key_ids == ("key-1",)
    machine.on_response(end + 5, 304, headers(), b"")
    assert machine.usable_keys(end + 5) is not None
