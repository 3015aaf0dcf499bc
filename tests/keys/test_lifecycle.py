"""Key lifecycle: whole rotation timelines walked with an integer clock, plus the edges.

The timeline tests play the scheduler: at each step they sign a token with every
ring's current key, plan, apply the plan with the reference ``apply``, and check
the invariants a JWKS consumer relies on. Nothing sleeps; ``now`` is an int.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import NOW
from tokensmith.clock import FixedClock
from tokensmith.errors import TokensmithError
from tokensmith.keys import (
    DAY,
    Action,
    Activate,
    CreateKey,
    Delete,
    KeyRecord,
    KeyState,
    Retire,
    Revoke,
    RotationPolicy,
    RotationTooEarly,
    UnknownKey,
    apply,
    deletion_time,
    is_published_alg,
    now_seconds,
    plan,
    published,
    revoke,
    rotate_now,
    signing_key,
    verifiable,
)

POLICY = RotationPolicy()
HOUR = 3600


def kid_factory() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda alg: f"{alg}-{next(counter)}"


def current_keys(records: Sequence[KeyRecord], alg: str) -> list[KeyRecord]:
    return [r for r in records if r.alg == alg and r.state is KeyState.CURRENT]


def kids(records: Sequence[KeyRecord]) -> set[str]:
    return {r.kid for r in records}


def by_kid(records: Sequence[KeyRecord], kid: str) -> KeyRecord:
    (record,) = [r for r in records if r.kid == kid]
    return record


def ring(alg: str, *, activated: int = NOW, next_created: int | None = None) -> list[KeyRecord]:
    """A ring with a current key and, optionally, a next key."""
    records = [KeyRecord(f"{alg}-cur", alg, KeyState.CURRENT, activated, activated_at=activated)]
    if next_created is not None:
        records.append(KeyRecord(f"{alg}-next", alg, KeyState.NEXT, next_created))
    return records


def visible(records: Sequence[KeyRecord], now: int, policy: RotationPolicy) -> set[str]:
    """The kids a verifier can use: the public JWKS, or the issuer's own ring for HMAC."""
    return kids(verifiable(records, now, policy))


@dataclass
class Timeline:
    """The scheduler and every token ever signed, with the facts the tests check."""

    algs: tuple[str, ...]
    policy: RotationPolicy
    now: int = NOW
    records: list[KeyRecord] = field(default_factory=list)
    new_kid: Callable[[str], str] = field(default_factory=kid_factory)
    tokens: list[tuple[str, int]] = field(default_factory=list)  # (kid, exp)
    revoked: set[str] = field(default_factory=set)
    ever: set[str] = field(default_factory=set)
    first_keys: set[str] = field(default_factory=set)
    exempt: set[str] = field(default_factory=set)  # became current on an emergency path

    def run(self, actions: Sequence[Action]) -> None:
        """Apply like the store would, checking the ring after every single action."""
        for index in range(len(actions) + 1):
            partial = apply(self.records, actions[:index], self.now, self.new_kid)
            for alg in {r.alg for r in partial}:
                assert len(current_keys(partial, alg)) <= 1, actions[:index]
        before = {r.alg for r in self.records if r.state in (KeyState.CURRENT, KeyState.NEXT)}
        self.records = apply(self.records, actions, self.now, self.new_kid)
        for record in self.records:
            if record.kid not in self.ever and record.state is KeyState.CURRENT:
                if not before:  # nothing signed or was published to sign: a fresh ring
                    self.first_keys.add(record.kid)
        self.revoked |= {a.kid for a in actions if isinstance(a, Revoke)}
        self.ever |= kids(self.records)

    def schedule(self) -> None:
        """One run of the rotation job, then the invariants."""
        published_before = visible(self.records, self.now, self.policy)
        signers_before = {r.kid for r in self.records if r.state is KeyState.CURRENT}
        self.run(plan(self.records, self.algs, self.now, self.policy))
        assert plan(self.records, self.algs, self.now, self.policy) == []  # idempotent
        for record in self.records:
            if record.state is KeyState.CURRENT and record.kid not in signers_before:
                # A key that starts signing was already visible, unless nothing was.
                assert record.kid in published_before or record.kid in self.first_keys
        self.check(scheduled=True)
        self.sign()

    def operate(self, actions: Sequence[Action], *, emergency: bool) -> None:
        """An operator's rotate_now or revoke, applied between two runs of the job."""
        signers_before = self.current_kids()
        self.run(actions)
        if emergency:
            self.exempt |= self.current_kids() - signers_before
        self.check(scheduled=False)
        self.sign()

    def sign(self) -> None:
        for alg in self.algs:
            key = signing_key(self.records, alg)
            assert key is not None
            self.tokens.append((key.kid, self.now + self.policy.max_token_lifetime))

    def check(self, *, scheduled: bool) -> None:
        records, now, policy = self.records, self.now, self.policy
        assert len(kids(records)) == len(records)
        for alg in self.algs:
            assert len(current_keys(records, alg)) == 1
        public = kids(published(records, now, policy))
        usable = visible(records, now, policy)
        assert public <= usable
        for record in records:
            if not is_published_alg(record.alg):
                assert record.kid not in public
            if record.state is KeyState.REVOKED:
                assert record.kid not in usable
            gone_at = deletion_time(record, policy)
            if scheduled:
                assert gone_at is None or now < gone_at  # the job deleted everything due
            if record.activated_at is not None and record.kid not in self.first_keys:
                if record.kid not in self.exempt:
                    # Every signer but the very first was published for prepublish first.
                    assert record.activated_at - record.created_at >= policy.prepublish
        for kid, exp in self.tokens:
            # Every token verifies until it expires (plus leeway), unless its key was revoked.
            if now < exp + policy.leeway and kid not in self.revoked:
                assert kid in usable, (kid, now - exp)

    def current_kids(self) -> set[str]:
        return {r.kid for r in self.records if r.state is KeyState.CURRENT}

    def signers(self) -> set[str]:
        return {kid for kid, _ in self.tokens}


# -- whole timelines -----------------------------------------------------------------


@pytest.mark.parametrize(
    "algs",
    [("RS256",), ("RS256", "ES256"), ("HS256",), ("EdDSA", "HS256", "RS256")],
    ids=lambda algs: "+".join(algs),
)
@pytest.mark.parametrize("step", [DAY, 6 * HOUR], ids=["daily", "6-hourly"])
def test_hundred_days_of_scheduled_rotation(algs: tuple[str, ...], step: int) -> None:
    timeline = Timeline(algs, POLICY)
    span = 100 * DAY
    for now in range(NOW, NOW + span + 1, step):
        timeline.now = now
        timeline.schedule()
    # Activations fall on each rotation period: days 30, 60 and 90.
    assert len(timeline.signers()) == len(algs) * (1 + span // POLICY.rotation_period)
    # Retired keys were deleted along the way: only the live ring remains per algorithm.
    for alg in algs:
        states = sorted(r.state for r in timeline.records if r.alg == alg)
        assert KeyState.RETIRED not in states


def test_retired_key_stays_published_exactly_until_its_last_token_expires() -> None:
    policy = RotationPolicy(max_token_lifetime=3 * DAY, leeway=300)
    timeline = Timeline(("RS256", "ES256"), policy)
    retired_seen: dict[str, int] = {}
    for now in range(NOW, NOW + 70 * DAY, HOUR):
        timeline.now = now
        timeline.schedule()
        for record in timeline.records:
            if record.state is KeyState.RETIRED:
                assert record.retired_at is not None
                gone_at = record.retired_at + policy.max_token_lifetime + policy.leeway
                assert deletion_time(record, policy) == gone_at
                assert record.kid in kids(published(timeline.records, gone_at - 1, policy))
                assert record.kid not in kids(published(timeline.records, gone_at, policy))
                retired_seen[record.kid] = gone_at
    assert len(retired_seen) == 4  # two rotations (days 30, 60) in each of two rings
    for kid, gone_at in retired_seen.items():
        assert kid not in kids(timeline.records)
        assert gone_at <= timeline.now


def test_first_key_of_a_fresh_install_signs_at_once() -> None:
    actions = plan([], ["RS256"], NOW, POLICY)
    assert actions == [CreateKey("RS256", KeyState.CURRENT)]
    records = apply([], actions, NOW, kid_factory())
    assert signing_key(records, "RS256") == records[0]
    assert records[0].activated_at == NOW


def test_next_key_is_created_prepublish_before_rotation_and_takes_over_on_time() -> None:
    records = ring("RS256")
    due = NOW + POLICY.rotation_period
    assert plan(records, ["RS256"], due - POLICY.prepublish - 1, POLICY) == []
    actions = plan(records, ["RS256"], due - POLICY.prepublish, POLICY)
    assert actions == [CreateKey("RS256", KeyState.NEXT)]
    records = apply(records, actions, due - POLICY.prepublish, lambda alg: "RS256-new")
    assert kids(published(records, due - POLICY.prepublish, POLICY)) == {"RS256-cur", "RS256-new"}
    assert signing_key(records, "RS256") == by_kid(records, "RS256-cur")
    assert plan(records, ["RS256"], due - 1, POLICY) == []
    actions = plan(records, ["RS256"], due, POLICY)
    assert actions == [Retire("RS256-cur"), Activate("RS256-new")]


def test_restart_after_long_downtime_publishes_before_signing() -> None:
    # Down for 45 days: the overdue rotation must still pre-publish the new key.
    records = ring("ES256")
    restart = NOW + 45 * DAY
    actions = plan(records, ["ES256"], restart, POLICY)
    assert actions == [CreateKey("ES256", KeyState.NEXT)]
    records = apply(records, actions, restart, lambda alg: "ES256-new")
    assert signing_key(records, "ES256") == by_kid(records, "ES256-cur")
    assert plan(records, ["ES256"], restart + POLICY.prepublish - 1, POLICY) == []
    actions = plan(records, ["ES256"], restart + POLICY.prepublish, POLICY)
    assert actions == [Retire("ES256-cur"), Activate("ES256-new")]


def test_an_algorithm_added_beside_a_signing_ring_is_published_before_it_signs() -> None:
    records = ring("RS256")
    later = NOW + 3 * DAY
    actions = plan(records, ["ES256", "RS256"], later, POLICY)
    assert actions == [CreateKey("ES256", KeyState.NEXT)]
    records = apply(records, actions, later, lambda alg: "ES256-first")
    assert "ES256-first" in kids(published(records, later, POLICY))
    assert signing_key(records, "ES256") is None
    assert plan(records, ["ES256", "RS256"], later + POLICY.prepublish - 1, POLICY) == []
    actions = plan(records, ["ES256", "RS256"], later + POLICY.prepublish, POLICY)
    assert actions == [Activate("ES256-first")]


def test_an_algorithm_replacing_another_is_published_before_it_signs() -> None:
    # The old ring keeps signing until the new one's first key has been published for
    # prepublish: signing with it at once, verifiers holding the JWKS would refuse.
    records = ring("RS256")
    later = NOW + 3 * DAY
    actions = plan(records, ["ES256"], later, POLICY)
    assert actions == [CreateKey("ES256", KeyState.NEXT)]
    records = apply(records, actions, later, lambda alg: "ES256-first")
    assert signing_key(records, "RS256") is not None
    assert plan(records, ["ES256"], later + POLICY.prepublish - 1, POLICY) == []
    actions = plan(records, ["ES256"], later + POLICY.prepublish, POLICY)
    assert actions == [Activate("ES256-first"), Retire("RS256-cur")]
    records = apply(records, actions, later + POLICY.prepublish, kid_factory())
    assert signing_key(records, "RS256") is None
    assert signing_key(records, "ES256") is not None


def test_a_ring_replaced_beside_hs256_signs_until_its_successor_is_published() -> None:
    # RS256+HS256 -> ES256+HS256: retiring RS256 at once would leave HS256 signing for
    # prepublish, tokens no JWKS verifier can check.
    records = ring("RS256")
    later = NOW + 3 * DAY
    flags = {"other_signer": True, "hmac_has_signed": True}
    actions = plan(records, ["ES256"], later, POLICY, **flags)
    assert actions == [CreateKey("ES256", KeyState.NEXT)]
    records = apply(records, actions, later, lambda alg: "ES256-first")
    assert signing_key(records, "RS256") is not None
    done = later + POLICY.prepublish
    assert plan(records, ["ES256"], done, POLICY, **flags) == [
        Activate("ES256-first"),
        Retire("RS256-cur"),
    ]


def test_a_ring_dropped_for_hs256_alone_retires_at_once() -> None:
    # The configured HS256 secret signs at once: nothing to wait for.
    records = ring("RS256")
    later = NOW + 3 * DAY
    assert plan(records, [], later, POLICY, other_signer=True) == [Retire("RS256-cur")]
    # Without another signer the ring keeps signing: nothing else could.
    assert plan(records, [], later, POLICY) == []


def test_an_hs256_deployment_adding_rs256_publishes_it_before_it_signs() -> None:
    # The secret has signed tokens verifiers hold: it goes on signing while the first
    # RS256 key is published, as beside a ring that signs.
    actions = plan([], ["RS256"], NOW, POLICY, other_signer=True, hmac_has_signed=True)
    assert actions == [CreateKey("RS256", KeyState.NEXT)]
    records = apply([], actions, NOW, lambda alg: "RS256-first")
    assert signing_key(records, "RS256") is None
    flags = {"other_signer": True, "hmac_has_signed": True}
    assert plan(records, ["RS256"], NOW + POLICY.prepublish - 1, POLICY, **flags) == []
    late = NOW + POLICY.prepublish
    assert plan(records, ["RS256"], late, POLICY, **flags) == [Activate("RS256-first")]


def test_a_fresh_install_naming_hs256_beside_rs256_signs_rs256_at_once() -> None:
    # A secret that never signed leaves nothing to roll over; nor does a history of
    # HS256 when the secret is no longer configured (nothing else could sign).
    for flags in ({"other_signer": True}, {"hmac_has_signed": True}):
        actions = plan([], ["RS256"], NOW, POLICY, **flags)
        assert actions == [CreateKey("RS256", KeyState.CURRENT)]


def test_rotate_now_on_an_empty_ring_beside_a_signer_publishes_first() -> None:
    flags = {"other_signer": True, "hmac_has_signed": True}
    assert rotate_now([], "RS256", NOW, POLICY, **flags) == [CreateKey("RS256", KeyState.NEXT)]
    forced = rotate_now([], "RS256", NOW, POLICY, force=True, **flags)
    assert forced == [CreateKey("RS256", KeyState.CURRENT)]
    # An added ring whose first key is still young: the operator waits, as for any
    # rotation (it used to sign at once with the young key).
    records = [*ring("RS256"), KeyRecord("ES256-first", "ES256", KeyState.NEXT, NOW)]
    with pytest.raises(RotationTooEarly) as refused:
        rotate_now(records, "ES256", NOW + HOUR, POLICY)
    assert refused.value.remaining == POLICY.prepublish - HOUR
    late = NOW + POLICY.prepublish
    assert rotate_now(records, "ES256", late, POLICY) == [Activate("ES256-first")]
    young = rotate_now(records, "ES256", NOW + HOUR, POLICY, force=True)
    assert young == [Activate("ES256-first")]


def test_rings_of_dropped_algorithms_wind_down() -> None:
    records = ring("RS256") + ring("ES256", next_created=NOW + 29 * DAY)
    now = NOW + 29 * DAY + HOUR
    actions = plan(records, ["RS256"], now, POLICY)
    # RS256 is due as well: only ES256's ring winds down.
    assert actions == [
        CreateKey("RS256", KeyState.NEXT),
        Retire("ES256-cur"),
        Delete("ES256-next"),
    ]
    records = apply(records, actions, now, kid_factory())
    assert signing_key(records, "ES256") is None
    # Tokens it signed keep verifying until they expire.
    assert "ES256-cur" in kids(published(records, now, POLICY))
    later = now + POLICY.retention
    assert plan(records, ["RS256"], later, POLICY) == [Delete("ES256-cur")]


def test_hs256_is_never_published() -> None:
    timeline = Timeline(("HS256", "RS256"), POLICY)
    for now in range(NOW, NOW + 65 * DAY, DAY):
        timeline.now = now
        timeline.schedule()
        assert all(r.alg == "RS256" for r in published(timeline.records, now, POLICY))
        assert any(r.alg == "HS256" for r in verifiable(timeline.records, now, POLICY))
    assert not is_published_alg("HS256")
    assert not is_published_alg("HS512")
    assert is_published_alg("EdDSA")


# -- rotate_now ------------------------------------------------------------------------


def test_rotate_now_activates_a_next_key_published_long_enough() -> None:
    records = ring("RS256", next_created=NOW + DAY)
    now = NOW + 2 * DAY
    assert rotate_now(records, "RS256", now, POLICY) == [
        Retire("RS256-cur"),
        Activate("RS256-next"),
    ]


def test_rotate_now_refuses_a_young_next_key_and_says_how_long_to_wait() -> None:
    records = ring("RS256", next_created=NOW + DAY)
    now = NOW + DAY + 1000
    with pytest.raises(RotationTooEarly) as caught:
        rotate_now(records, "RS256", now, POLICY)
    remaining = POLICY.prepublish - 1000
    assert caught.value.remaining == remaining
    assert f"{remaining} s" in str(caught.value)
    assert caught.value.code == "rotation_too_early"
    assert isinstance(caught.value, TokensmithError)
    # The wait it names is exactly right: one second earlier is too early, then it works.
    with pytest.raises(RotationTooEarly):
        rotate_now(records, "RS256", now + remaining - 1, POLICY)
    assert rotate_now(records, "RS256", now + remaining, POLICY)[-1] == Activate("RS256-next")


def test_rotate_now_with_force_activates_a_young_next_key() -> None:
    records = ring("RS256", next_created=NOW + DAY)
    actions = rotate_now(records, "RS256", NOW + DAY + 1, POLICY, force=True)
    assert actions == [Retire("RS256-cur"), Activate("RS256-next")]


def test_rotate_now_without_next_publishes_one_and_plan_finishes_the_rotation() -> None:
    records = ring("ES256")
    now = NOW + 3 * DAY  # long before the scheduled rotation
    actions = rotate_now(records, "ES256", now, POLICY)
    assert actions == [CreateKey("ES256", KeyState.NEXT)]
    records = apply(records, actions, now, lambda alg: "ES256-new")
    assert signing_key(records, "ES256") == by_kid(records, "ES256-cur")
    assert plan(records, ["ES256"], now + POLICY.prepublish - 1, POLICY) == []
    actions = plan(records, ["ES256"], now + POLICY.prepublish, POLICY)
    assert actions == [Retire("ES256-cur"), Activate("ES256-new")]


def test_rotate_now_with_force_and_no_next_signs_with_a_new_key_at_once() -> None:
    records = ring("ES256")
    now = NOW + 3 * DAY
    actions = rotate_now(records, "ES256", now, POLICY, force=True)
    assert actions == [Retire("ES256-cur"), CreateKey("ES256", KeyState.CURRENT)]
    records = apply(records, actions, now, lambda alg: "ES256-new")
    assert signing_key(records, "ES256") == by_kid(records, "ES256-new")
    assert by_kid(records, "ES256-cur").state is KeyState.RETIRED
    assert kids(published(records, now, POLICY)) == {"ES256-cur", "ES256-new"}
    assert plan(records, ["ES256"], now, POLICY) == []


def test_rotate_now_on_an_empty_ring_creates_the_first_key() -> None:
    assert rotate_now([], "EdDSA", NOW, POLICY) == [CreateKey("EdDSA", KeyState.CURRENT)]


def test_rotate_now_leaves_other_rings_alone() -> None:
    records = ring("RS256") + ring("ES256", next_created=NOW)
    actions = rotate_now(records, "RS256", NOW + DAY, POLICY)
    assert actions == [CreateKey("RS256", KeyState.NEXT)]


# -- revoke ---------------------------------------------------------------------------------


def test_revoking_the_current_key_hands_signing_to_a_new_key() -> None:
    records = ring("RS256")
    actions = revoke(records, "RS256-cur")
    assert actions == [Revoke("RS256-cur"), CreateKey("RS256", KeyState.CURRENT)]
    now = NOW + 5 * DAY
    records = apply(records, actions, now, lambda alg: "RS256-new")
    assert signing_key(records, "RS256") == by_kid(records, "RS256-new")
    assert "RS256-cur" not in kids(published(records, now, POLICY))
    assert "RS256-cur" not in kids(verifiable(records, now, POLICY))
    assert plan(records, ["RS256"], now, POLICY) == []
    # The row stays for the audit window, then goes.
    gone_at = now + POLICY.retention
    assert deletion_time(by_kid(records, "RS256-cur"), POLICY) == gone_at
    assert plan(records, ["RS256"], gone_at - 1, POLICY) == []
    assert plan(records, ["RS256"], gone_at, POLICY) == [Delete("RS256-cur")]


def test_keep_until_holds_a_retired_key_after_its_retention() -> None:
    # The token lifetime was lowered: tokens signed under the former one live until
    # keep_until, and their key stays published (and undeleted) until then.
    records = ring("RS256", next_created=NOW + 29 * DAY)
    now = NOW + 30 * DAY
    records = apply(records, plan(records, ["RS256"], now, POLICY), now, kid_factory())
    assert deletion_time(by_kid(records, "RS256-cur"), POLICY) == now + POLICY.retention
    held = RotationPolicy(keep_until=now + 2 * DAY)
    assert deletion_time(by_kid(records, "RS256-cur"), held) == now + 2 * DAY
    later = now + POLICY.retention
    assert "RS256-cur" in kids(published(records, later, held))
    assert plan(records, ["RS256"], later, held) == []
    assert plan(records, ["RS256"], now + 2 * DAY, held) == [Delete("RS256-cur")]


def test_revoking_the_current_key_promotes_the_published_next_key() -> None:
    records = ring("RS256", next_created=NOW + 29 * DAY)
    actions = revoke(records, "RS256-cur")
    assert actions == [Revoke("RS256-cur"), Activate("RS256-next")]


def test_revoking_a_next_key_does_not_touch_signing() -> None:
    records = ring("RS256", next_created=NOW + 29 * DAY)
    now = NOW + 29 * DAY + HOUR
    actions = revoke(records, "RS256-next")
    assert actions == [Revoke("RS256-next")]
    records = apply(records, actions, now, kid_factory())
    assert signing_key(records, "RS256") == by_kid(records, "RS256-cur")
    # Rotation is still due, so the job publishes a replacement next key.
    assert plan(records, ["RS256"], now, POLICY) == [CreateKey("RS256", KeyState.NEXT)]


def test_revoking_a_retired_key_unpublishes_it_before_its_deletion_time() -> None:
    records = [
        KeyRecord("old", "ES256", KeyState.RETIRED, NOW, activated_at=NOW, retired_at=NOW + DAY),
        *ring("ES256", activated=NOW + DAY),
    ]
    now = NOW + DAY + 60
    assert "old" in kids(published(records, now, POLICY))
    actions = revoke(records, "old")
    assert actions == [Revoke("old")]
    records = apply(records, actions, now, kid_factory())
    assert "old" not in kids(published(records, now, POLICY))
    assert by_kid(records, "old").retired_at == NOW + DAY  # history kept for the audit


def test_revoking_an_unknown_or_revoked_kid_fails() -> None:
    records = ring("RS256")
    with pytest.raises(UnknownKey) as caught:
        revoke(records, "nope")
    assert caught.value.code == "unknown_key"
    assert isinstance(caught.value, TokensmithError)
    records = apply(records, revoke(records, "RS256-cur"), NOW, kid_factory())
    with pytest.raises(UnknownKey, match="already revoked"):
        revoke(records, "RS256-cur")


# -- views -------------------------------------------------------------------------------


def test_views_on_a_mixed_table() -> None:
    records = [
        KeyRecord("rs-old", "RS256", KeyState.RETIRED, 0, activated_at=0, retired_at=NOW - 100),
        KeyRecord("rs-gone", "RS256", KeyState.RETIRED, 0, activated_at=0, retired_at=NOW - DAY),
        KeyRecord("rs-cur", "RS256", KeyState.CURRENT, 0, activated_at=NOW - 100),
        KeyRecord("rs-next", "RS256", KeyState.NEXT, NOW - 10),
        KeyRecord("rs-bad", "RS256", KeyState.REVOKED, 0, revoked_at=NOW - 5),
        KeyRecord("hs-cur", "HS256", KeyState.CURRENT, 0, activated_at=0),
    ]
    assert kids(published(records, NOW, POLICY)) == {"rs-old", "rs-cur", "rs-next"}
    assert kids(verifiable(records, NOW, POLICY)) == {"rs-old", "rs-cur", "rs-next", "hs-cur"}
    assert signing_key(records, "RS256") == records[2]
    assert signing_key(records, "HS256") == records[5]
    assert signing_key(records, "ES256") is None
    assert deletion_time(records[0], POLICY) == NOW - 100 + POLICY.retention
    assert deletion_time(records[2], POLICY) is None
    assert deletion_time(records[3], POLICY) is None
    assert deletion_time(records[4], POLICY) == NOW - 5 + POLICY.retention
    # The order is stable whatever order the rows come in (byte-identical JWKS).
    assert published(records, NOW, POLICY) == published(records[::-1], NOW, POLICY)


def test_now_seconds_reads_the_injected_clock() -> None:
    assert now_seconds(FixedClock(NOW + 0.9)) == NOW


# -- validation --------------------------------------------------------------------------


def test_policy_defaults() -> None:
    assert POLICY.rotation_period == 30 * DAY
    assert POLICY.prepublish == DAY
    assert POLICY.max_token_lifetime == 3600
    assert POLICY.leeway == 60
    assert POLICY.retention == 3660


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rotation_period": 0}, ValueError),
        ({"rotation_period": -DAY}, ValueError),
        ({"prepublish": 0}, ValueError),
        ({"prepublish": -1}, ValueError),
        ({"prepublish": 30 * DAY}, ValueError),
        ({"rotation_period": DAY, "prepublish": 2 * DAY}, ValueError),
        ({"max_token_lifetime": 0}, ValueError),
        ({"leeway": -1}, ValueError),
        ({"leeway": 1.5}, TypeError),
        ({"keep_until": -1}, ValueError),
        ({"keep_until": 1.0}, TypeError),
        ({"rotation_period": True}, TypeError),
        ({"prepublish": "86400"}, TypeError),
    ],
)
def test_policy_refuses(kwargs: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        RotationPolicy(**kwargs)  # type: ignore[arg-type]


def test_policy_accepts_zero_leeway_and_a_short_period() -> None:
    policy = RotationPolicy(rotation_period=2, prepublish=1, max_token_lifetime=1, leeway=0)
    assert policy.retention == 1


@pytest.mark.parametrize(
    "build",
    [
        lambda: KeyRecord("k", "RS256", KeyState.CURRENT, NOW),
        lambda: KeyRecord("k", "RS256", KeyState.NEXT, NOW, activated_at=NOW),
        lambda: KeyRecord("k", "RS256", KeyState.RETIRED, NOW, activated_at=NOW),
        lambda: KeyRecord("k", "RS256", KeyState.CURRENT, NOW, activated_at=NOW, revoked_at=NOW),
        lambda: KeyRecord("k", "RS256", KeyState.REVOKED, NOW),
        lambda: KeyRecord("", "RS256", KeyState.NEXT, NOW),
        lambda: KeyRecord("k", "none", KeyState.NEXT, NOW),
        lambda: KeyRecord("k", "RS256", "active", NOW),  # type: ignore[arg-type]
        lambda: KeyRecord("k", "RS256", KeyState.NEXT, -1),
    ],
)
def test_key_record_refuses_shapes_no_lifecycle_produces(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_key_record_refuses_non_integer_times() -> None:
    for value in (1.5, True, "1"):
        with pytest.raises(TypeError):
            KeyRecord("k", "RS256", KeyState.NEXT, value)  # type: ignore[arg-type]


def test_key_record_accepts_state_strings_from_the_database() -> None:
    record = KeyRecord("k", "RS256", "retired", 1, activated_at=2, retired_at=3)  # type: ignore[arg-type]
    assert record.state is KeyState.RETIRED
    # Times out of order (a clock that stepped back) must not make the table unloadable.
    KeyRecord("k", "RS256", KeyState.RETIRED, 10, activated_at=5, retired_at=1)


def test_plan_refuses_misuse_and_corrupt_tables() -> None:
    with pytest.raises(TypeError):
        plan([], "RS256", NOW, POLICY)
    with pytest.raises(ValueError):
        plan([], ["RS265"], NOW, POLICY)
    with pytest.raises(TypeError):
        plan([], ["RS256"], float(NOW), POLICY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate"):
        plan(ring("RS256") + ring("RS256"), ["RS256"], NOW, POLICY)
    other = KeyRecord("other", "RS256", KeyState.CURRENT, NOW, activated_at=NOW)
    two_current = [*ring("RS256"), other]
    with pytest.raises(ValueError, match="more than one current"):
        plan(two_current, ["RS256"], NOW, POLICY)
    with pytest.raises(ValueError):
        rotate_now([], "none", NOW, POLICY)


@pytest.mark.parametrize(
    "action",
    [Activate("RS256-cur"), Retire("RS256-next"), Delete("RS256-cur"), Revoke("nope")],
)
def test_apply_refuses_transitions_no_plan_produces(action: Action) -> None:
    records = ring("RS256", next_created=NOW)
    with pytest.raises(ValueError):
        apply(records, [action], NOW, kid_factory())


def test_apply_refuses_a_second_current_key_and_reused_kids() -> None:
    records = ring("RS256")
    with pytest.raises(ValueError, match="more than one current"):
        apply(records, [CreateKey("RS256", KeyState.CURRENT)], NOW, kid_factory())
    with pytest.raises(ValueError, match="existing kid"):
        apply(records, [CreateKey("RS256", KeyState.NEXT)], NOW, lambda alg: "RS256-cur")
    with pytest.raises(ValueError):
        CreateKey("RS256", KeyState.RETIRED)


# -- property: any mix of time, rotations and revocations ---------------------------------------

ALGS = ("RS256", "ES256", "HS256")
OPS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=40 * DAY),  # how far the clock moves
        st.sampled_from(["tick", "rotate", "rotate-force", "revoke"]),
        st.integers(min_value=0, max_value=50),  # picks the ring or the key
    ),
    max_size=30,
)


@settings(max_examples=80, deadline=None)
@given(ops=OPS, short=st.booleans())
def test_invariants_hold_under_any_operator_sequence(
    ops: list[tuple[int, str, int]], short: bool
) -> None:
    # A short policy makes every phase (next, rotation, deletion) happen within a few steps.
    policy = (
        RotationPolicy(rotation_period=3 * DAY, prepublish=DAY // 2, max_token_lifetime=DAY)
        if short
        else POLICY
    )
    timeline = Timeline(ALGS, policy)
    timeline.schedule()
    for advance, op, pick in ops:
        timeline.now += advance
        alg = ALGS[pick % len(ALGS)]
        if op in ("rotate", "rotate-force"):
            force = op == "rotate-force"
            upcoming = [r for r in timeline.records if r.alg == alg and r.state is KeyState.NEXT]
            try:
                actions = rotate_now(timeline.records, alg, timeline.now, policy, force=force)
            except RotationTooEarly as exc:
                # Only ever for a next key younger than prepublish, and never when forced.
                assert not force
                (young,) = upcoming
                assert exc.remaining == young.created_at + policy.prepublish - timeline.now > 0
                actions = []
            timeline.operate(actions, emergency=force)
        elif op == "revoke":
            live = sorted(r.kid for r in timeline.records if r.state is not KeyState.REVOKED)
            kid = live[pick % len(live)]
            timeline.operate(revoke(timeline.records, kid), emergency=True)
            assert kid not in visible(timeline.records, timeline.now, policy)
        timeline.schedule()
