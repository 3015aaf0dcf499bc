"""Key rotation as pure planning: records and a time in, a list of actions out.

Each algorithm has its own ring: at most one ``next`` key, one ``current`` key
and any number of ``retired`` and ``revoked`` ones. ``plan`` says what the
scheduled job must do at ``now``; ``rotate_now`` and ``revoke`` are the
operator's on-demand paths. The store applies the actions in one transaction
(``apply`` is the reference implementation), so concurrent instances that plan
from the same rows agree, and planning again after applying finds nothing to do.

Actions are ordered so that every prefix leaves each ring with at most one
current key (a retirement comes before the activation that replaces it): a
unique index on (alg) where state = 'current' holds after every statement.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace

from tokensmith.errors import TokensmithError
from tokensmith.jose import SUPPORTED_ALGORITHMS

from .records import (
    Action,
    Activate,
    CreateKey,
    Delete,
    KeyRecord,
    KeyState,
    Retire,
    Revoke,
    RotationPolicy,
)
from .rings import Ring, check_now, deletion_time, group_rings

__all__ = ["RotationTooEarly", "UnknownKey", "apply", "plan", "revoke", "rotate_now"]


class RotationTooEarly(TokensmithError):
    """The next key has not been published long enough for verifiers' caches to know it."""

    code = "rotation_too_early"
    description = "The next key has not been published long enough to sign."

    def __init__(self, remaining: int, message: str | None = None) -> None:
        self.remaining = remaining
        super().__init__(message)


class UnknownKey(TokensmithError):
    """No live key has that kid (never existed, deleted, or already revoked)."""

    code = "unknown_key"
    description = "No live key has that kid."


def _check_algs(algs: Collection[str]) -> frozenset[str]:
    if isinstance(algs, str | bytes):
        raise TypeError("algs must be a collection of algorithm names, not one string")
    for alg in algs:
        if type(alg) is not str or alg not in SUPPORTED_ALGORITHMS:
            raise ValueError(f"unsupported algorithm {alg!r}")
    return frozenset(algs)


def _prepublished(record: KeyRecord, now: int, policy: RotationPolicy) -> bool:
    return now - record.created_at >= policy.prepublish


def _first_signer(alg: str, ring: Ring) -> Action:
    """A ring without a current key gets one: its next key if any, else a new one."""
    # A next key, published for however short a time, is better known to verifiers
    # than one generated now.
    if ring.next is not None:
        return Activate(ring.next.kid)
    return CreateKey(alg, KeyState.CURRENT)


def _added_ring(alg: str, ring: Ring, now: int, policy: RotationPolicy) -> list[Action]:
    """A ring added beside rings that sign: its first key is prepublished like a next key.

    Verifiers holding the JWKS from before would refuse a key that signs at once (a
    restart must never sign with a key its JWKS did not publish); the other rings
    sign meanwhile.
    """
    if ring.next is None:
        return [CreateKey(alg, KeyState.NEXT)]
    if _prepublished(ring.next, now, policy):
        return [Activate(ring.next.kid)]
    return []


def _creates_current(action: Action) -> bool:
    return isinstance(action, CreateKey) and action.state is KeyState.CURRENT


def _others_sign(signing: set[str], alg: str, other_signer: bool, hmac_has_signed: bool) -> bool:
    """Whether tokens verifiers hold come from elsewhere than the ``alg`` ring.

    Then a first key of ``alg`` is prepublished like a next key: signing at once would
    hand out tokens under a kid no verifier's cached JWKS has. A secret that has never
    signed (a fresh install naming HS256 beside RS256) leaves nothing to roll over.
    """
    return bool(signing - {alg}) or (other_signer and hmac_has_signed)


def plan(
    records: Sequence[KeyRecord],
    algs: Collection[str],
    now: int,
    policy: RotationPolicy,
    *,
    other_signer: bool = False,
    hmac_has_signed: bool = False,
) -> list[Action]:
    """What the scheduled job does at ``now`` so each ring in ``algs`` stays healthy.

    Per algorithm in ``algs``: an empty ring gets a current key at once when no other
    ring signs (a fresh install has nothing to roll over), else a next key that takes
    over once published for ``prepublish``; a current key within ``prepublish`` of its
    rotation time gets a next key; a next key published for ``prepublish`` takes
    over and the current key retires. Rings of algorithms no longer in ``algs``
    wind down: a next key (it never signed) goes, and the current key retires once a
    ring in ``algs`` signs, so replacing one algorithm by another never signs with a
    key verifiers have not had ``prepublish`` to fetch. ``other_signer``: something
    outside the rings signs (a configured HS256 secret), so with no ring in ``algs`` a
    dropped ring need not wait; ``hmac_has_signed``: that secret has issued tokens
    already, so an empty ring is prepublished while it goes on signing, as beside a
    ring that signs. Retired and revoked keys are deleted ``policy.retention`` after
    they left service.
    """
    check_now(now)
    wanted = _check_algs(algs)
    rings = group_rings(records)
    signing = {alg for alg, ring in rings.items() if ring.current is not None}
    actions: list[Action] = []
    for alg in sorted(wanted):
        ring = rings.get(alg, Ring(None, None))
        if ring.current is None:
            if _others_sign(signing, alg, other_signer, hmac_has_signed):
                actions += _added_ring(alg, ring, now, policy)
            else:
                actions.append(_first_signer(alg, ring))
        elif ring.next is None:
            assert ring.current.activated_at is not None
            if now >= ring.current.activated_at + policy.rotation_period - policy.prepublish:
                actions.append(CreateKey(alg, KeyState.NEXT))
        # A scheduled next key is created prepublish before the rotation time, so
        # "published long enough" also means "rotation is due". An on-demand one
        # (rotate_now without force) takes over as soon as it is safe.
        elif _prepublished(ring.next, now, policy):
            actions += [Retire(ring.current.kid), Activate(ring.next.kid)]
    wanted_signs = (
        # HS256 takes over a dropped ring only when no ring is wanted at all: beside a
        # wanted ring that is still being published, the dropped one keeps signing, or
        # tokens would be HS256 (which JWKS verifiers cannot check) for prepublish.
        (other_signer and not wanted)
        or bool(signing & wanted)
        or any(isinstance(a, Activate) or _creates_current(a) for a in actions)
    )
    for alg in sorted(rings.keys() - wanted):
        ring = rings[alg]
        if ring.current is not None and wanted_signs:
            actions.append(Retire(ring.current.kid))
        if ring.next is not None:
            actions.append(Delete(ring.next.kid))
    for record in sorted(records, key=lambda r: r.kid):
        gone_at = deletion_time(record, policy)
        if gone_at is not None and gone_at <= now:
            actions.append(Delete(record.kid))
    return actions


def rotate_now(
    records: Sequence[KeyRecord],
    alg: str,
    now: int,
    policy: RotationPolicy,
    *,
    force: bool = False,
    other_signer: bool = False,
    hmac_has_signed: bool = False,
) -> list[Action]:
    """On-demand rotation of the ``alg`` ring.

    Without ``force`` the new signing key is always one verifiers have had
    ``prepublish`` seconds to fetch: a next key old enough takes over now, a
    younger one raises ``RotationTooEarly``, and with no next key one is created
    (``plan`` activates it once it is old enough). ``force`` is the emergency path:
    the next key takes over at once, or a new key is created that signs at once,
    and verifiers holding a cached JWKS must refetch to accept its tokens.
    ``other_signer`` and ``hmac_has_signed`` are as for ``plan``.
    """
    check_now(now)
    _check_algs((alg,))
    rings = group_rings(records)
    ring = rings.get(alg, Ring(None, None))
    if ring.current is None:
        signing = {a for a, r in rings.items() if r.current is not None}
        if force or not _others_sign(signing, alg, other_signer, hmac_has_signed):
            # Nothing else signs, so nothing is rolled over: as plan for an empty ring.
            return [_first_signer(alg, ring)]
    if ring.next is not None:
        remaining = ring.next.created_at + policy.prepublish - now
        if remaining > 0 and not force:
            raise RotationTooEarly(
                remaining,
                f"the next {alg} key may sign in {remaining} s, once it has been published "
                f"for {policy.prepublish} s; force the rotation to activate it now",
            )
        return _take_over(ring.current, ring.next)
    if force:
        assert ring.current is not None  # an empty ring returned above
        return [Retire(ring.current.kid), CreateKey(alg, KeyState.CURRENT)]
    return [CreateKey(alg, KeyState.NEXT)]


def _take_over(current: KeyRecord | None, upcoming: KeyRecord) -> list[Action]:
    """The next key signs; the current one, if the ring has one, retires first."""
    retire: list[Action] = [] if current is None else [Retire(current.kid)]
    return [*retire, Activate(upcoming.kid)]


def revoke(records: Sequence[KeyRecord], kid: str) -> list[Action]:
    """Revoke a compromised key: unpublished at once, so its tokens stop verifying.

    Revoking the current key also hands signing to another key in the same plan:
    the next key if there is one (already published, so caches may know it),
    otherwise a new key that signs at once.
    """
    if type(kid) is not str:
        raise TypeError("kid must be a string")
    rings = group_rings(records)
    record = next((r for r in records if r.kid == kid), None)
    if record is None:
        raise UnknownKey(f"no key has kid {kid!r}")
    if record.state is KeyState.REVOKED:
        raise UnknownKey(f"the key {kid!r} is already revoked")
    actions: list[Action] = [Revoke(kid)]
    if record.state is KeyState.CURRENT:
        upcoming = rings[record.alg].next
        actions.append(
            Activate(upcoming.kid) if upcoming else CreateKey(record.alg, KeyState.CURRENT)
        )
    return actions


# -- reference implementation of the store ------------------------------------


def apply(
    records: Sequence[KeyRecord],
    actions: Iterable[Action],
    now: int,
    new_kid: Callable[[str], str],
) -> list[KeyRecord]:
    """The records after applying ``actions`` at ``now``, as the store does in one transaction.

    ``new_kid(alg)`` names each created key (the store uses the new JWK's
    thumbprint). An action that does not fit the record's state raises
    ``ValueError``: plans never produce one.
    """
    check_now(now)
    group_rings(records)
    by_kid = {r.kid: r for r in records}

    def take(kid: str, *expected: KeyState) -> KeyRecord:
        record = by_kid.get(kid)
        if record is None:
            raise ValueError(f"no key has kid {kid!r}")
        if record.state not in expected:
            raise ValueError(f"key {kid!r} is {record.state}, not {'/'.join(expected)}")
        return record

    for action in actions:
        match action:
            case CreateKey(alg=alg, state=state):
                kid = new_kid(alg)
                if kid in by_kid:
                    raise ValueError(f"new_kid returned an existing kid {kid!r}")
                activated = now if state is KeyState.CURRENT else None
                by_kid[kid] = KeyRecord(kid, alg, state, now, activated_at=activated)
            case Activate(kid=kid):
                record = take(kid, KeyState.NEXT)
                by_kid[kid] = replace(record, state=KeyState.CURRENT, activated_at=now)
            case Retire(kid=kid):
                record = take(kid, KeyState.CURRENT)
                by_kid[kid] = replace(record, state=KeyState.RETIRED, retired_at=now)
            case Revoke(kid=kid):
                live = (KeyState.NEXT, KeyState.CURRENT, KeyState.RETIRED)
                record = take(kid, *live)
                by_kid[kid] = replace(record, state=KeyState.REVOKED, revoked_at=now)
            case Delete(kid=kid):
                # Never a current key: deleting it would leave the ring without a signer.
                take(kid, KeyState.NEXT, KeyState.RETIRED, KeyState.REVOKED)
                del by_kid[kid]
            case _:
                raise TypeError(f"not a lifecycle action: {type(action).__name__}")
    result = list(by_kid.values())
    group_rings(result)  # the end state must be a valid set of rings
    return result
