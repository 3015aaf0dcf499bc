"""Throttle keys: canonical usernames and addresses, bounded and unambiguous."""

from __future__ import annotations

import pytest

from tokensmith.server.services.throttle import Throttle
from tokensmith.server.services.throttle_keys import MAX_KEY_PART, address_key, subject_key
from tokensmith.server.services.throttle_store import MemoryThrottleStore


def test_the_documented_key_format() -> None:
    throttle = Throttle(MemoryThrottleStore())
    assert throttle.keys("alice", "203.0.113.7") == ("user:alice|ip:203.0.113.7", "ip:203.0.113.7")
    clients = Throttle(MemoryThrottleStore(), kind="client")
    assert clients.keys("svc", "203.0.113.7")[0] == "client:svc|ip:203.0.113.7"


def test_separators_in_names_cannot_forge_another_pair() -> None:
    throttle = Throttle(MemoryThrottleStore())
    forged = throttle.keys("alice|ip:203.0.113.7", "unix")
    assert forged[0] != throttle.keys("alice", "203.0.113.7|ip:unix")[0]
    assert forged[0] != throttle.keys("alice", "203.0.113.7")[0]
    assert forged[0].count("|") == 1
    # "%" is escaped too, so an escaped-looking name stays distinct from the escape.
    assert subject_key("a%7Cb") != subject_key("a|b")


@pytest.mark.parametrize(
    ("variant", "canonical"),
    [
        ("Alice", "alice"),
        ("\uff21\uff2c\uff29\uff23\uff25", "alice"),  # fullwidth "ALICE"
        ("STRASSE", "strasse"),
        ("Stra\u00dfe", "strasse"),  # sharp s folds to "ss"
    ],
)
def test_subject_key_folds_case_and_compatibility_forms(variant: str, canonical: str) -> None:
    assert subject_key(variant) == canonical
    assert subject_key(subject_key(variant)) == subject_key(variant)  # idempotent


def test_long_parts_are_hashed_to_a_fixed_size() -> None:
    long_a, long_b = "a" * 60_000, "a" * 59_999 + "b"
    assert len(subject_key(long_a)) == len("sha256:") + 64
    assert subject_key(long_a) != subject_key(long_b)
    assert subject_key("x" * MAX_KEY_PART) == "x" * MAX_KEY_PART
    assert len(address_key("h" * 10_000)) == len("sha256:") + 64
    assert subject_key("bad \udc80" * 100).startswith("sha256:")  # lone surrogates too


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("testclient", "testclient"),
        ("", ""),
    ],
)
def test_address_key(address: str, key: str) -> None:
    assert address_key(address) == key


def test_ipv6_prefix_is_configurable() -> None:
    assert address_key("2001:db8:1:2::1", 128) == "2001:db8:1:2::1/128"
    assert address_key("2001:db8:1:2::1", 48) == "2001:db8:1::/48"
