"""Rings and the views every reader shares: who signs, what verifies, what is published.

``lifecycle`` plans changes to the rings; these functions only read them (the key ring
in memory renders its JWKS and picks its signers with them). Every plan, and the
reference ``apply``, groups rows with ``group_rings``, so a table no lifecycle action
could have produced is refused the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tokensmith.clock import Clock

from .records import KeyRecord, KeyState, RotationPolicy, is_published_alg

__all__ = [
    "Ring",
    "check_now",
    "deletion_time",
    "group_rings",
    "now_seconds",
    "published",
    "signing_key",
    "verifiable",
]


def now_seconds(clock: Clock) -> int:
    """The clock's time as whole seconds, the unit of every lifecycle time."""
    return int(clock.now())


@dataclass(frozen=True, slots=True)
class Ring:
    current: KeyRecord | None
    next: KeyRecord | None


def group_rings(records: Sequence[KeyRecord]) -> dict[str, Ring]:
    """Group by algorithm, refusing rows no lifecycle action could have produced."""
    seen: set[str] = set()
    current: dict[str, KeyRecord] = {}
    upcoming: dict[str, KeyRecord] = {}
    algs: set[str] = set()
    for record in records:
        if not isinstance(record, KeyRecord):
            raise TypeError("records must be KeyRecord values")
        if record.kid in seen:
            raise ValueError(f"duplicate kid {record.kid!r}")
        seen.add(record.kid)
        algs.add(record.alg)
        slot = {KeyState.CURRENT: current, KeyState.NEXT: upcoming}.get(record.state)
        if slot is not None:
            if record.alg in slot:
                raise ValueError(f"more than one {record.state} key for {record.alg}")
            slot[record.alg] = record
    return {alg: Ring(current.get(alg), upcoming.get(alg)) for alg in algs}


def check_now(now: object) -> None:
    if type(now) is not int:
        raise TypeError("now must be an int (Unix seconds)")


def deletion_time(record: KeyRecord, policy: RotationPolicy) -> int | None:
    """When a retired or revoked key's row may go; None while the key is live."""
    if record.state is KeyState.RETIRED:
        assert record.retired_at is not None
        return max(record.retired_at + policy.retention, policy.keep_until)
    if record.state is KeyState.REVOKED:
        assert record.revoked_at is not None
        return max(record.revoked_at + policy.retention, policy.keep_until)
    return None


def verifiable(records: Iterable[KeyRecord], now: int, policy: RotationPolicy) -> list[KeyRecord]:
    """Keys a token may verify against at ``now``, HMAC included (for the issuer itself).

    A retired key drops out at its deletion time even before the row is deleted,
    so a late cleanup job never extends a key's life.
    """
    check_now(now)
    kept: list[KeyRecord] = []
    for record in records:
        if record.state is KeyState.REVOKED:
            continue
        gone_at = deletion_time(record, policy)
        if gone_at is None or now < gone_at:
            kept.append(record)
    # A stable order keeps the JWKS byte-identical between requests (ETag, caches).
    return sorted(kept, key=lambda r: (r.alg, r.created_at, r.kid))


def published(records: Iterable[KeyRecord], now: int, policy: RotationPolicy) -> list[KeyRecord]:
    """The keys of the public JWKS at ``now``: next, current and retired, never HMAC."""
    return [r for r in verifiable(records, now, policy) if is_published_alg(r.alg)]


def signing_key(records: Iterable[KeyRecord], alg: str) -> KeyRecord | None:
    """The current key of the ``alg`` ring, or None if nothing may sign with ``alg``."""
    for record in records:
        if record.alg == alg and record.state is KeyState.CURRENT:
            return record
    return None
