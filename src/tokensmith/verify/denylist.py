"""The local denylist: revoked token ids and per-subject not-before times.

Pure: no I/O and no clock reads. The revocation poller fills it from the issuer's
feed; the verifier asks it about every token, cached or not. Memory follows the live
revocations: a jti entry drops out once its token has expired (plus the verifier's
leeway, since the verifier still accepts the token until then), and a not-before time
once no token issued before it can still be unexpired.
"""

from __future__ import annotations

import heapq
import math

__all__ = ["DEFAULT_MAX_ENTRIES", "DEFAULT_NOT_BEFORE_RETENTION", "Denylist", "DenylistFull"]

#: The token server's longest access-token lifetime (one day) plus its largest
#: leeway: after that, every token issued before a not-before time has expired.
DEFAULT_NOT_BEFORE_RETENTION = 86_400 + 300
#: Entries (jtis plus subjects) held at most: a day of revocations of a busy issuer
#: fits many times over, and a hostile feed cannot take more than ~200 MB.
DEFAULT_MAX_ENTRIES = 1_000_000


class DenylistFull(Exception):
    """A new entry was refused because the denylist holds ``max_entries`` already.

    Nothing is evicted to make room: dropping a revocation would accept its token
    again, so the caller is told and can retry once expired entries have gone.
    """


def _check_seconds(name: str, value: float) -> None:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds")


class Denylist:
    """Revoked jtis (until their expiry) and not-before times per subject."""

    __slots__ = (
        "_jti_expiry",
        "_leeway",
        "_nbf_expiry",
        "_retention",
        "max_entries",
        "not_before",
        "revoked",
    )

    def __init__(
        self,
        *,
        leeway: float = 0,
        not_before_retention: float = DEFAULT_NOT_BEFORE_RETENTION,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        _check_seconds("leeway", leeway)
        _check_seconds("not_before_retention", not_before_retention)
        if type(max_entries) is not int or max_entries < 1:
            raise ValueError("max_entries must be a positive integer")
        self._leeway = leeway
        self._retention = not_before_retention
        self.max_entries = max_entries
        #: jti -> the time its entry may be dropped (the token's exp plus the leeway).
        self.revoked: dict[str, float] = {}
        #: subject -> tokens with an iat before this time are refused.
        self.not_before: dict[str, float] = {}
        # Min-heaps of (drop time, key) so pruning touches only what is due. An entry
        # whose time changed since it was pushed is recognised as outdated and skipped.
        self._jti_expiry: list[tuple[float, str]] = []
        self._nbf_expiry: list[tuple[float, str, float]] = []

    def room(self) -> int:
        """How many new entries fit before ``max_entries``."""
        return self.max_entries - len(self)

    def revoke(self, jti: str, exp: float) -> None:
        """Refuse the token ``jti`` until it has expired (``exp`` from the feed, finite).

        Raises ``DenylistFull`` for a new jti when the list is full.
        """
        until = exp + self._leeway
        current = self.revoked.get(jti)
        if current is not None and current >= until:
            return
        if current is None and self.room() <= 0:
            raise DenylistFull(f"the denylist holds its maximum of {self.max_entries} entries")
        self.revoked[jti] = until
        heap = self._jti_expiry
        heapq.heappush(heap, (until, jti))
        # Each later exp for a known jti leaves an outdated heap entry behind; a feed
        # repeating one jti must not grow the heap without bound.
        if len(heap) > 2 * len(self.revoked) + 1024:
            self._jti_expiry = [(t, j) for j, t in self.revoked.items()]
            heapq.heapify(self._jti_expiry)

    def set_not_before(self, subject: str, nbf: float) -> None:
        """Refuse ``subject``'s tokens issued before ``nbf`` (a later time replaces an earlier).

        Raises ``DenylistFull`` for a new subject when the list is full.
        """
        current = self.not_before.get(subject)
        if current is not None and current >= nbf:
            return
        if current is None and self.room() <= 0:
            raise DenylistFull(f"the denylist holds its maximum of {self.max_entries} entries")
        self.not_before[subject] = nbf
        heap = self._nbf_expiry
        heapq.heappush(heap, (nbf + self._retention, subject, nbf))
        if len(heap) > 2 * len(self.not_before) + 1024:
            self._nbf_expiry = [(t + self._retention, s, t) for s, t in self.not_before.items()]
            heapq.heapify(self._nbf_expiry)

    def refuses(self, jti: str | None, subject: str, iat: float | None) -> bool:
        """Whether a token with these claims is revoked.

        A subject with a not-before time refuses tokens issued before it, and tokens
        without ``iat``, which cannot show they are newer. ``iat == nbf`` passes: the
        token server sets not-before to the second after a log-out for that reason.
        """
        if jti is not None and jti in self.revoked:
            return True
        nbf = self.not_before.get(subject)
        return nbf is not None and (iat is None or iat < nbf)

    def prune(self, now: float) -> int:
        """Drop the entries that can no longer refuse anything; return how many went."""
        dropped = 0
        heap = self._jti_expiry
        while heap and heap[0][0] <= now:
            until, jti = heapq.heappop(heap)
            if self.revoked.get(jti) == until:
                del self.revoked[jti]
                dropped += 1
        nbf_heap = self._nbf_expiry
        while nbf_heap and nbf_heap[0][0] <= now:
            _, subject, nbf = heapq.heappop(nbf_heap)
            if self.not_before.get(subject) == nbf:
                del self.not_before[subject]
                dropped += 1
        return dropped

    def __len__(self) -> int:
        return len(self.revoked) + len(self.not_before)

    def __bool__(self) -> bool:
        return bool(self.revoked) or bool(self.not_before)
