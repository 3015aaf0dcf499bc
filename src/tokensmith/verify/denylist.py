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

__all__ = ["DEFAULT_NOT_BEFORE_RETENTION", "Denylist"]

#: The token server's longest access-token lifetime (one day) plus its largest
#: leeway: after that, every token issued before a not-before time has expired.
DEFAULT_NOT_BEFORE_RETENTION = 86_400 + 300


def _check_seconds(name: str, value: float) -> None:
    if type(value) not in (int, float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds")


class Denylist:
    """Revoked jtis (until their expiry) and not-before times per subject."""

    __slots__ = ("_jti_expiry", "_leeway", "_nbf_expiry", "_retention", "not_before", "revoked")

    def __init__(
        self, *, leeway: float = 0, not_before_retention: float = DEFAULT_NOT_BEFORE_RETENTION
    ) -> None:
        _check_seconds("leeway", leeway)
        _check_seconds("not_before_retention", not_before_retention)
        self._leeway = leeway
        self._retention = not_before_retention
        #: jti -> the time its entry may be dropped (the token's exp plus the leeway).
        self.revoked: dict[str, float] = {}
        #: subject -> tokens with an iat before this time are refused.
        self.not_before: dict[str, float] = {}
        # Min-heaps of (drop time, key) so pruning touches only what is due. An entry
        # whose time changed since it was pushed is recognised as outdated and skipped.
        self._jti_expiry: list[tuple[float, str]] = []
        self._nbf_expiry: list[tuple[float, str, float]] = []

    def revoke(self, jti: str, exp: float) -> None:
        """Refuse the token ``jti`` until it has expired (``exp`` from the feed)."""
        until = exp + self._leeway
        if self.revoked.get(jti, -math.inf) >= until:
            return
        self.revoked[jti] = until
        heapq.heappush(self._jti_expiry, (until, jti))

    def set_not_before(self, subject: str, nbf: float) -> None:
        """Refuse ``subject``'s tokens issued before ``nbf`` (a later time replaces an earlier)."""
        if self.not_before.get(subject, -math.inf) >= nbf:
            return
        self.not_before[subject] = nbf
        heapq.heappush(self._nbf_expiry, (nbf + self._retention, subject, nbf))

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
