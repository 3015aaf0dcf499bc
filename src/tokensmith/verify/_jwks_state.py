"""The remote key set cache as a pure state machine: when to fetch, what to serve, what to log.

No I/O and no clock reads: every method is given ``now``. The sync and async drivers
(``jwks_cache.py``) run the HTTP requests and report what happened here, so these
rules are written and tested once:

- A fetched set is fresh for the response's ``max-age`` (less its ``Age``), clamped
  to ``[min_refresh, max_refresh]``; ``default_max_age`` when the server names none.
- At most one automatic fetch starts per ``cooldown``: a due refresh, a retry after a
  failure, or a token whose kid is unknown. A flood of random kids therefore costs
  one fetch per cooldown (PyJWT CVE-2026-48524 fetched once per token).
- A failed fetch keeps the last good set. It keeps serving for ``stale_if_error``
  after it went stale (RFC 5861's stale-if-error), and the failure is reported once
  per outage rather than raised on every request.
- A 200 whose body is byte-identical to the last one, or a 304, renews freshness and
  keeps the same ``JWKSet`` object, so nothing downstream (the verified-token cache)
  sees a change.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from tokensmith.errors import InvalidKeySet
from tokensmith.jose import JWKSet

__all__ = [
    "FetchOutcome",
    "JWKSCacheMachine",
    "JWKSCachePolicy",
    "JWKSCacheState",
    "max_age_of",
    "valid_etag",
]

_ACCEPT = "application/jwk-set+json, application/json"


def _check_seconds(name: str, value: float, *, minimum: float = 0.0) -> None:
    if type(value) not in (int, float):
        raise TypeError(f"{name} must be a number of seconds")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be at least {minimum} seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class JWKSCachePolicy:
    """How the remote key set is cached and fetched; every value is validated."""

    #: Bounds on the server's max-age: a ``max-age=0`` cannot become one fetch per
    #: request, and a set is never trusted longer than ``max_refresh`` unconfirmed.
    min_refresh: float = 60.0
    max_refresh: float = 3600.0
    #: Freshness when the response names no max-age (clamped like one).
    default_max_age: float = 300.0
    #: The shortest time between two automatic fetches.
    cooldown: float = 30.0
    #: How long a stale set keeps serving while the server cannot be reached.
    stale_if_error: float = 86_400.0
    #: The total time a fetch may take.
    timeout: float = 5.0
    #: The largest key set document read (100 large RSA keys fit).
    max_bytes: int = 512 * 1024

    def __post_init__(self) -> None:
        _check_seconds("min_refresh", self.min_refresh)
        _check_seconds("max_refresh", self.max_refresh)
        _check_seconds("default_max_age", self.default_max_age)
        _check_seconds("cooldown", self.cooldown)
        _check_seconds("stale_if_error", self.stale_if_error)
        _check_seconds("timeout", self.timeout, minimum=0.001)
        if self.min_refresh > self.max_refresh:
            raise ValueError("min_refresh must not exceed max_refresh")
        if type(self.max_bytes) is not int or self.max_bytes < 1024:
            raise ValueError("max_bytes must be an integer of at least 1024")

    def lifetime(self, max_age: float | None) -> float:
        """How long a response stays fresh: its max-age clamped to the bounds."""
        seconds = self.default_max_age if max_age is None else max_age
        return min(max(seconds, self.min_refresh), self.max_refresh)


#: RFC 9111 1.2.2: a larger delta-seconds is read as this value.
_MAX_DELTA_SECONDS = 2_147_483_648
_MAX_DELTA_DIGITS = len(str(_MAX_DELTA_SECONDS))


def _delta_seconds(text: str) -> float | None:
    """RFC 9111 delta-seconds, or None when unreadable.

    ``str.isdigit`` alone accepts "²" and other Unicode digits that ``float`` refuses;
    only ASCII digits count. The length is looked at before any conversion.
    """
    if not text or not text.isascii() or not text.isdigit():
        return None
    if len(text) > _MAX_DELTA_DIGITS:
        return float(_MAX_DELTA_SECONDS)
    return float(min(int(text), _MAX_DELTA_SECONDS))


def max_age_of(headers: Mapping[str, str]) -> float | None:
    """The freshness a response grants (RFC 9111 5.2.2.1 and 4.2.3), None if it says nothing.

    ``no-store``/``no-cache`` grant none; ``Age`` (time already spent in a shared
    cache) is subtracted. An unreadable max-age or Age counts as absent.
    """
    value = headers.get("cache-control")
    if value is None:
        return None
    max_age: float | None = None
    for directive in value.split(","):
        name, _, argument = directive.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            seconds = _delta_seconds(argument.strip().strip('"'))
            if seconds is not None:
                max_age = seconds
    if max_age is None:
        return None
    age = _delta_seconds(headers.get("age", "").strip())
    return max(0.0, max_age - age) if age is not None else max_age


#: RFC 9110 8.8.3 entity-tag, restricted to ASCII (obs-text could not be sent back
#: in If-None-Match: httpx encodes request headers as ASCII).
_ETAG = re.compile(r'(?:W/)?"[\x21\x23-\x7e]*"')
_MAX_ETAG_LENGTH = 256


def valid_etag(value: str | None) -> str | None:
    """``value`` if it is an entity-tag this cache can send back, else None."""
    if value is None or len(value) > _MAX_ETAG_LENGTH or _ETAG.fullmatch(value) is None:
        return None
    return value


@dataclass(frozen=True, slots=True)
class JWKSCacheState:
    """What the cache holds and why, at one instant. Never contains key material."""

    #: The set is within its freshness lifetime.
    fresh: bool
    #: The set is past its freshness but still serving (refresh failing or pending).
    stale: bool
    #: No new automatic fetch starts before this time (None: one may start now).
    cooling_down_until: float | None
    #: When the set stops being fresh, and when a stale set stops serving.
    fresh_until: float | None
    stale_until: float | None
    #: The last time the server confirmed the set (a 200 or a 304).
    last_fetch: float | None
    #: The last time a fetch started.
    last_attempt: float | None
    #: Why the last fetch failed, None once a fetch succeeds.
    last_error: str | None
    key_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FetchOutcome:
    """What one fetch changed, for the driver to act on and log."""

    #: A different key set now serves (the verified-token cache must be dropped).
    changed: bool
    error: str | None = None
    #: This failure starts an outage: log it (later failures of the outage are not).
    first_failure: bool = False
    #: This success ends an outage.
    recovered: bool = False
    #: Kids of keys the new set published with private members (dropped): log once.
    dropped_private: tuple[str, ...] = ()


class JWKSCacheMachine:
    """Holds the key set and decides; the drivers do the I/O and report back."""

    def __init__(self, policy: JWKSCachePolicy) -> None:
        if not isinstance(policy, JWKSCachePolicy):
            raise TypeError("policy must be a JWKSCachePolicy")
        self.policy = policy
        self.keys: JWKSet | None = None
        self._digest: bytes | None = None
        self._etag: str | None = None
        self._fresh_until = -math.inf
        self._last_fetch: float | None = None
        self._last_attempt = -math.inf
        self._last_error: str | None = None
        self._failing = False

    # -- questions ------------------------------------------------------------------

    def usable_keys(self, now: float) -> JWKSet | None:
        """The set to verify with at ``now``: fresh, or stale within ``stale_if_error``."""
        if self.keys is None or now >= self._fresh_until + self.policy.stale_if_error:
            return None
        return self.keys

    def may_fetch(self, now: float) -> bool:
        """Whether the cooldown lets an automatic fetch start at ``now``."""
        return now >= self._last_attempt + self.policy.cooldown

    def refresh_due(self, now: float) -> bool:
        """A fetch should start: the set is missing or stale, and the cooldown allows it."""
        return now >= self._fresh_until and self.may_fetch(now)

    def recheck_at(self, now: float) -> float:
        """Until when the answer of ``usable_keys(now)`` holds without asking again."""
        if self.keys is None:
            return now
        if now < self._fresh_until:
            return self._fresh_until
        stale_until = self._fresh_until + self.policy.stale_if_error
        if now >= stale_until:
            return now
        # Serving stale: ask again at the next allowed retry, or when serving must stop.
        return min(self._last_attempt + self.policy.cooldown, stale_until)

    def state(self, now: float) -> JWKSCacheState:
        has_keys = self.keys is not None
        fresh = has_keys and now < self._fresh_until
        cooling = self._last_attempt + self.policy.cooldown
        return JWKSCacheState(
            fresh=fresh,
            stale=not fresh and self.usable_keys(now) is not None,
            cooling_down_until=cooling if now < cooling else None,
            fresh_until=self._fresh_until if has_keys else None,
            stale_until=self._fresh_until + self.policy.stale_if_error if has_keys else None,
            last_fetch=self._last_fetch,
            last_attempt=None if self._last_attempt == -math.inf else self._last_attempt,
            last_error=self._last_error,
            key_ids=tuple(key.kid for key in self.keys) if self.keys is not None else (),
        )

    # -- a fetch --------------------------------------------------------------------

    def begin_fetch(self, now: float) -> dict[str, str]:
        """Record that a fetch starts (it opens the cooldown); return its request headers."""
        self._last_attempt = now
        headers = {"Accept": _ACCEPT}
        if self._etag is not None and self.keys is not None:
            headers["If-None-Match"] = self._etag
        return headers

    def on_failure(self, now: float, reason: str) -> FetchOutcome:
        """The fetch failed (transport error, bad status, garbage): keep the last good set."""
        del now  # failures change no time: the cooldown began with the attempt
        self._last_error = reason[:200]
        first = not self._failing
        self._failing = True
        return FetchOutcome(changed=False, error=self._last_error, first_failure=first)

    def on_response(
        self, now: float, status: int, headers: Mapping[str, str], body: bytes
    ) -> FetchOutcome:
        """Apply a response: 200 with a key set, 304, or anything else as a failure."""
        if status == 304:
            if self.keys is None:
                return self.on_failure(now, "HTTP 304 without a cached key set")
            return self._confirmed(now, headers, self.keys, changed=False)
        if 300 <= status < 400:
            return self.on_failure(now, f"redirect refused (HTTP {status})")
        if status != 200:
            return self.on_failure(now, f"HTTP {status}")
        digest = hashlib.sha256(body).digest()
        if self.keys is not None and digest == self._digest:
            return self._confirmed(now, headers, self.keys, changed=False)
        try:
            # Public halves only: a verifier never needs a private key, and parsing
            # one (prime recovery from ``d``) costs seconds a hostile server chooses.
            keys = JWKSet.from_json(body, public_only=True)
        except InvalidKeySet as exc:
            return self.on_failure(now, f"not a valid JWK Set: {exc.message}")
        self._digest = digest
        outcome = self._confirmed(now, headers, keys, changed=True)
        if keys.dropped_private:
            return replace(outcome, dropped_private=keys.dropped_private)
        return outcome

    def _confirmed(
        self, now: float, headers: Mapping[str, str], keys: JWKSet, *, changed: bool
    ) -> FetchOutcome:
        self.keys = keys
        # A tag that could not be sent back would wedge every later revalidation.
        etag = valid_etag(headers.get("etag"))
        if etag is not None:
            self._etag = etag
        elif changed:
            self._etag = None  # the tag named the old body
        self._fresh_until = now + self.policy.lifetime(max_age_of(headers))
        self._last_fetch = now
        self._last_error = None
        recovered = self._failing
        self._failing = False
        return FetchOutcome(changed=changed, recovered=recovered)
