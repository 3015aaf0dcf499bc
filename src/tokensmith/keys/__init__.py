"""Signing-key lifecycle and at-rest sealing, as pure functions over values. No I/O.

from tokensmith.keys import RotationPolicy, apply, plan, published

policy = RotationPolicy()                    # 30-day rotation, 1-day pre-publication
actions = plan(records, ["RS256"], now, policy)
records = apply(records, actions, now, new_kid)   # the store does this in a transaction
jwks_members = published(records, now, policy)

Lifecycle of a key, per algorithm: next (published, not signing) -> current
(signs) -> retired (published, verifies only, until every token it signed has
expired) -> deleted; or revoked (unpublished at once) -> deleted.
"""

from .lifecycle import RotationTooEarly, UnknownKey, apply, plan, revoke, rotate_now
from .records import (
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
    is_published_alg,
)
from .rings import deletion_time, now_seconds, published, signing_key, verifiable
from .sealing import MasterKey, SealError, seal, seal_jwk, unseal, unseal_jwk

__all__ = [
    "DAY",
    "Action",
    "Activate",
    "CreateKey",
    "Delete",
    "KeyRecord",
    "KeyState",
    "MasterKey",
    "Retire",
    "Revoke",
    "RotationPolicy",
    "RotationTooEarly",
    "SealError",
    "UnknownKey",
    "apply",
    "deletion_time",
    "is_published_alg",
    "now_seconds",
    "plan",
    "published",
    "revoke",
    "rotate_now",
    "seal",
    "seal_jwk",
    "signing_key",
    "unseal",
    "unseal_jwk",
    "verifiable",
]
