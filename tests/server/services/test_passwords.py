"""Password hashing: round trips, equal cost for unknown users, rehash, policy, threads."""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any, Literal

import anyio
import argon2
import pytest
from argon2.profiles import RFC_9106_LOW_MEMORY

from tokensmith.server.services.passwords import (
    DEFAULT_PARAMETERS,
    PasswordHasher,
    PasswordPolicy,
    VerifyResult,
    WeakPassword,
    check_new_password,
    normalize_password,
)

from .conftest import CHEAP

PASSWORD = "correct horse battery staple"


def fullwidth(text: str) -> str:
    """The fullwidth form of ASCII letters and digits, as an East Asian IME types them."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


class CountingEngine(argon2.PasswordHasher):
    """The real argon2 hasher, recording every hash and verify call and their threads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.verified: list[str] = []
        self.hashed = 0
        self.threads: list[int] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.hashed += 1
        self.threads.append(threading.get_ident())
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        self.threads.append(threading.get_ident())
        return super().verify(hash, password)


def counting(params: argon2.Parameters = CHEAP) -> CountingEngine:
    return CountingEngine.from_parameters(params)  # type: ignore[return-value]


@pytest.fixture
def engine() -> CountingEngine:
    return counting()


@pytest.fixture
def hasher(engine: CountingEngine) -> PasswordHasher:
    return PasswordHasher(engine=engine, max_concurrency=2)


def test_round_trip(hasher: PasswordHasher) -> None:
    stored = hasher.hash(PASSWORD)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert PASSWORD not in stored
    assert hasher.hash(PASSWORD) != stored  # a fresh salt every time
    assert hasher.verify(stored, PASSWORD) == VerifyResult(ok=True, needs_rehash=False)


def test_wrong_password(hasher: PasswordHasher) -> None:
    stored = hasher.hash(PASSWORD)
    assert hasher.verify(stored, PASSWORD + "!") == VerifyResult(ok=False, needs_rehash=False)
    assert hasher.verify(stored, "") == VerifyResult(ok=False)


def test_unknown_user_verifies_against_a_dummy_with_the_same_parameters(
    hasher: PasswordHasher, engine: CountingEngine
) -> None:
    stored = hasher.hash(PASSWORD)
    engine.verified.clear()

    assert hasher.verify(stored, "wrong password!") == VerifyResult(ok=False)
    wrong_password_calls = list(engine.verified)
    engine.verified.clear()

    assert hasher.verify(None, PASSWORD) == VerifyResult(ok=False)
    assert len(engine.verified) == len(wrong_password_calls) == 1
    dummy = engine.verified[0]
    assert dummy != stored
    # The same cost: the dummy is an argon2id hash with exactly the real parameters.
    assert argon2.extract_parameters(dummy) == argon2.extract_parameters(stored)
    assert argon2.extract_parameters(dummy) == hasher.parameters


def test_needs_rehash_when_parameters_change() -> None:
    old = PasswordHasher(engine=counting(CHEAP))
    stored = old.hash(PASSWORD)
    stronger = dataclasses.replace(CHEAP, time_cost=2, memory_cost=16)
    new = PasswordHasher(engine=counting(stronger))

    assert new.verify(stored, PASSWORD) == VerifyResult(ok=True, needs_rehash=True)
    assert new.verify(stored, "not it at all") == VerifyResult(ok=False, needs_rehash=False)
    rehashed = new.hash(PASSWORD)
    assert new.verify(rehashed, PASSWORD) == VerifyResult(ok=True, needs_rehash=False)
    assert old.verify(rehashed, PASSWORD) == VerifyResult(ok=True, needs_rehash=True)


def test_an_argon2i_hash_verifies_and_asks_for_a_rehash(hasher: PasswordHasher) -> None:
    legacy = argon2.PasswordHasher.from_parameters(
        dataclasses.replace(CHEAP, type=argon2.Type.I)
    ).hash(PASSWORD)
    assert hasher.verify(legacy, PASSWORD) == VerifyResult(ok=True, needs_rehash=True)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "$argon2id$nonsense",
        "$argon2id$v=19$m=8,t=1,p=1$AAAA$BBBB",
        "$argon2id$v=19$m=8,t=1,p=1$é$é",  # not ASCII at all
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
    ],
)
def test_malformed_stored_hash_fails_closed_at_full_cost(
    hasher: PasswordHasher,
    engine: CountingEngine,
    stored: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine.verified.clear()
    with caplog.at_level(logging.WARNING, logger="tokensmith.server.services.passwords"):
        assert hasher.verify(stored, PASSWORD) == VerifyResult(ok=False)
    # The failed attempt on the row, then the dummy: a broken account is not faster.
    assert engine.verified[-1] != stored
    assert argon2.extract_parameters(engine.verified[-1]) == hasher.parameters
    assert [r.getMessage() for r in caplog.records] == [
        "stored password hash is malformed; the login is refused"
    ]
    assert PASSWORD not in caplog.text


def test_truncated_real_hash_fails_closed(hasher: PasswordHasher) -> None:
    stored = hasher.hash(PASSWORD)
    assert hasher.verify(stored[:-6], PASSWORD) == VerifyResult(ok=False)


def test_nfkc_fullwidth_and_ascii_are_the_same_password(hasher: PasswordHasher) -> None:
    ascii_form = "password12345"
    wide = fullwidth(ascii_form)
    assert wide != ascii_form
    assert normalize_password(wide) == ascii_form
    assert hasher.verify(hasher.hash(wide), ascii_form).ok
    assert hasher.verify(hasher.hash(ascii_form), wide).ok
    # The ligature "ﬁ" and "fi" too; but case is significant (NFKC does not fold case).
    assert hasher.verify(hasher.hash("\ufb01nancial report"), "financial report").ok
    assert not hasher.verify(hasher.hash(ascii_form), "PASSWORD12345").ok


def test_whitespace_is_kept(hasher: PasswordHasher) -> None:
    stored = hasher.hash(" " + PASSWORD + " ")
    assert not hasher.verify(stored, PASSWORD).ok


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 12"),
        ("a" * 11, "at least 12"),
        (" " * 20, "only whitespace"),
        ("\u3000" * 12 + "\t", "only whitespace"),  # ideographic spaces normalize to spaces
        ("x" * 1025, "at most 1024"),
        ("\ufdfa" * 60, "at most 1024"),  # 60 characters, 1080 after NFKC
        ("valid length \ud800 text", "cannot be encoded"),
    ],
)
def test_weak_passwords_are_refused(password: str, fragment: str) -> None:
    with pytest.raises(WeakPassword) as info:
        check_new_password(password)
    assert info.value.code == "weak_password"
    assert fragment in info.value.message
    assert password not in info.value.message


def test_acceptable_passwords_pass_the_policy(hasher: PasswordHasher) -> None:
    check_new_password("a" * 12)
    check_new_password("x" * 1024)
    check_new_password(fullwidth("password1234"))
    hasher.check_new_password(PASSWORD)
    with pytest.raises(WeakPassword):
        PasswordHasher(engine=counting(), policy=PasswordPolicy(min_length=40)).check_new_password(
            PASSWORD
        )


def test_hash_bounds_length_but_not_the_minimum(hasher: PasswordHasher) -> None:
    # A rehash on login must work for a password set under an older, laxer minimum.
    assert hasher.verify(hasher.hash("short"), "short").ok
    with pytest.raises(WeakPassword):
        hasher.hash("x" * 1025)


@pytest.mark.parametrize("password", ["x" * 1025, "x" * 1_000_000, "\ufdfa" * 60, "bad \udc80"])
def test_over_long_or_unencodable_password_is_refused_before_any_hashing(
    hasher: PasswordHasher, engine: CountingEngine, password: str
) -> None:
    stored = hasher.hash("x" * 1024)
    engine.verified.clear()
    # Known and unknown users take the same shortcut, so it reveals nothing about either.
    assert hasher.verify(stored, password) == VerifyResult(ok=False)
    assert hasher.verify(None, password) == VerifyResult(ok=False)
    assert engine.verified == []


def test_default_parameters_are_the_rfc_9106_low_memory_profile() -> None:
    assert DEFAULT_PARAMETERS == RFC_9106_LOW_MEMORY
    assert DEFAULT_PARAMETERS.type is argon2.Type.ID
    assert PasswordHasher(max_concurrency=1).parameters == RFC_9106_LOW_MEMORY


def test_construction_errors() -> None:
    with pytest.raises(ValueError, match="not both"):
        PasswordHasher(CHEAP, engine=counting())
    with pytest.raises(ValueError, match="max_concurrency"):
        PasswordHasher(CHEAP, max_concurrency=0)
    with pytest.raises(ValueError):
        PasswordPolicy(min_length=0)
    with pytest.raises(ValueError):
        PasswordPolicy(min_length=20, max_length=10)


def test_repr_shows_parameters_not_hashes(hasher: PasswordHasher) -> None:
    text = repr(hasher)
    assert text == "PasswordHasher(type=ID, t=1, m=8, p=1, max_concurrency=2)"
    assert "$argon2" not in text


def test_default_concurrency_is_the_available_cpus() -> None:
    import os

    assert PasswordHasher(CHEAP).limiter.total_tokens == len(os.sched_getaffinity(0))


@pytest.mark.anyio
async def test_async_variants_run_in_a_worker_thread(
    hasher: PasswordHasher, engine: CountingEngine
) -> None:
    loop_thread = threading.get_ident()
    engine.threads.clear()
    stored = await hasher.hash_async(PASSWORD)
    assert await hasher.verify_async(stored, PASSWORD) == VerifyResult(ok=True)
    assert await hasher.verify_async(None, PASSWORD) == VerifyResult(ok=False)
    assert len(engine.threads) == 3
    assert loop_thread not in engine.threads


class GatedEngine(CountingEngine):
    """Hashing blocks on ``release`` once ``gate`` is set; counts hashes running at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = False
        self.release = threading.Event()
        self.changed = threading.Condition()
        self.active = 0
        self.max_active = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        if not self.gate:
            return super().hash(password, salt=salt)
        with self.changed:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            self.changed.notify_all()
        try:
            # A bound, not a sleep: it only matters if the test is broken and would hang.
            assert self.release.wait(timeout=30)
            return super().hash(password, salt=salt)
        finally:
            with self.changed:
                self.active -= 1

    def wait_active(self, n: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.active >= n, timeout=30)


@pytest.mark.anyio
@pytest.mark.parametrize("limit", [1, 2])
async def test_the_limiter_bounds_concurrent_hashing(limit: int) -> None:
    engine: GatedEngine = GatedEngine.from_parameters(CHEAP)  # type: ignore[assignment]
    hasher = PasswordHasher(engine=engine, max_concurrency=limit)
    engine.gate = True
    results: list[str] = []

    async def one() -> None:
        results.append(await hasher.hash_async(PASSWORD))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(one)
        try:
            # Wait (in a thread of anyio's default pool, not ours) until `limit` hashes run.
            assert await anyio.to_thread.run_sync(engine.wait_active, limit)
            await anyio.wait_all_tasks_blocked()
            assert hasher.limiter.borrowed_tokens == limit
            assert hasher.limiter.statistics().tasks_waiting == 4 - limit
        finally:
            engine.release.set()  # also on failure, so the blocked threads end at once

    assert len(results) == 4
    assert engine.max_active == limit
