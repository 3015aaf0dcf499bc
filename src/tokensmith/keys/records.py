"""The values the key lifecycle works on: key records, the rotation policy, actions.

A ``KeyRecord`` is the metadata of one signing key (its row in the database
without the sealed private key). The lifecycle never touches key material, so
these values can be logged, compared and generated freely in tests.

Times are whole Unix seconds. Nothing here checks that they are ordered
(``created_at <= activated_at`` ...): a wall clock that steps back would then
make the key table unloadable, and a server that cannot load its keys cannot
sign at all. Only the shape of each state is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tokensmith.jose import SUPPORTED_ALGORITHMS

__all__ = [
    "DAY",
    "Action",
    "Activate",
    "CreateKey",
    "Delete",
    "KeyRecord",
    "KeyState",
    "Retire",
    "Revoke",
    "RotationPolicy",
    "is_published_alg",
]

DAY = 86_400


class KeyState(StrEnum):
    """Where a key is in its life: next -> current -> retired -> deleted, or revoked."""

    NEXT = "next"  # published, does not sign yet: verifiers' caches learn it first
    CURRENT = "current"  # signs (one per algorithm)
    RETIRED = "retired"  # published, verifies only, until its last token has expired
    REVOKED = "revoked"  # unpublished at once; the row stays for the audit window


def is_published_alg(alg: str) -> bool:
    """False for HMAC: a shared secret never appears in a JWKS."""
    return not alg.startswith("HS")


def _check_time(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    # bool is an int subclass; True as a timestamp is a bug, not a time.
    if type(value) is not int:
        raise TypeError(f"{name} must be an int (Unix seconds)")
    if value < 0:
        raise ValueError(f"{name} must not be negative")


def _check_alg(alg: object) -> None:
    if type(alg) is not str:
        raise TypeError("alg must be a string")
    if alg not in SUPPORTED_ALGORITHMS:
        raise ValueError(f"unsupported algorithm {alg!r}")


# Which optional times each state must have (True), must not have (False), or may have (None).
_SHAPES: dict[KeyState, tuple[bool | None, bool | None, bool | None]] = {
    KeyState.NEXT: (False, False, False),
    KeyState.CURRENT: (True, False, False),
    KeyState.RETIRED: (True, True, False),
    # A revoked key keeps the history it had (it may have been next, current or retired).
    KeyState.REVOKED: (None, None, True),
}


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """The metadata of one signing key; the sealed private key is stored beside it."""

    kid: str
    alg: str
    state: KeyState
    created_at: int
    activated_at: int | None = None
    retired_at: int | None = None
    revoked_at: int | None = None

    def __post_init__(self) -> None:
        if type(self.kid) is not str or not self.kid:
            raise ValueError("kid must be a non-empty string")
        _check_alg(self.alg)
        # Rows come back from the database as plain strings; accept them, once, here.
        object.__setattr__(self, "state", KeyState(self.state))
        _check_time("created_at", self.created_at)
        times = {
            "activated_at": self.activated_at,
            "retired_at": self.retired_at,
            "revoked_at": self.revoked_at,
        }
        for (name, value), required in zip(times.items(), _SHAPES[self.state], strict=True):
            _check_time(name, value, optional=True)
            if required is True and value is None:
                raise ValueError(f"a {self.state} key must have {name}")
            if required is False and value is not None:
                raise ValueError(f"a {self.state} key must not have {name}")


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """How often keys rotate and how long old keys stay published. All values in seconds.

    ``max_token_lifetime`` must be at least the longest ``exp - iat`` of any token
    signed with ring keys (access and ID tokens), and ``leeway`` at least the
    leeway verifiers allow: a retired key is deleted at
    ``retired_at + max_token_lifetime + leeway``, and a token that outlives its key
    fails with ``key_not_found``. The default of one hour covers access tokens;
    raise it if longer-lived JWTs are signed with these keys.
    """

    rotation_period: int = 30 * DAY
    prepublish: int = DAY
    max_token_lifetime: int = 3600
    leeway: int = 60
    #: No retired or revoked key is deleted before this time: tokens signed while a
    #: longer ``max_token_lifetime`` was configured live until then (the store keeps it).
    keep_until: int = 0

    def __post_init__(self) -> None:
        for name in ("rotation_period", "prepublish", "max_token_lifetime", "leeway", "keep_until"):
            if type(getattr(self, name)) is not int:
                raise TypeError(f"{name} must be an int (seconds)")
        if self.rotation_period <= 0:
            raise ValueError("rotation_period must be positive")
        if self.prepublish <= 0:
            raise ValueError("prepublish must be positive: a new key must be published first")
        # A next key is created at activated_at + rotation_period - prepublish; with
        # prepublish >= rotation_period it would be due the instant its predecessor
        # activates, and the plan would never settle.
        if self.prepublish >= self.rotation_period:
            raise ValueError("prepublish must be shorter than rotation_period")
        if self.max_token_lifetime <= 0:
            raise ValueError("max_token_lifetime must be positive")
        if self.leeway < 0:
            raise ValueError("leeway must not be negative")
        if self.keep_until < 0:
            raise ValueError("keep_until must not be negative")

    @property
    def retention(self) -> int:
        """How long a retired key outlives its retirement: the last token's life plus skew."""
        return self.max_token_lifetime + self.leeway


# -- actions: what a plan asks the store to do, in order ---------------------------


@dataclass(frozen=True, slots=True)
class CreateKey:
    """Generate a key for ``alg`` and store it in ``state`` (next, or current)."""

    alg: str
    state: KeyState

    def __post_init__(self) -> None:
        _check_alg(self.alg)
        object.__setattr__(self, "state", KeyState(self.state))
        if self.state not in (KeyState.NEXT, KeyState.CURRENT):
            raise ValueError("a new key is created as next or current")


@dataclass(frozen=True, slots=True)
class Activate:
    """next -> current: the key starts signing."""

    kid: str


@dataclass(frozen=True, slots=True)
class Retire:
    """current -> retired: the key stops signing and stays published for ``retention``."""

    kid: str


@dataclass(frozen=True, slots=True)
class Revoke:
    """Any live state -> revoked: unpublished at once, tokens it signed stop verifying."""

    kid: str


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the row (and its sealed private key)."""

    kid: str


Action = CreateKey | Activate | Retire | Revoke | Delete
