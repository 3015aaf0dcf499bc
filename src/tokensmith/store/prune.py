"""Housekeeping: delete rows nothing needs any more, in one transaction the server runs on a timer.

Keys are not pruned here: deleting a key is a lifecycle action
(``tokensmith.keys.plan`` emits ``Delete``, ``KeyRepository.apply`` runs it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import check_count, check_time
from .audit import AuditRepository
from .login_failures import LoginFailureRepository
from .refresh_tokens import RefreshTokenRepository
from .revocations import RevocationRepository

__all__ = ["PruneCounts", "prune"]


@dataclass(frozen=True, slots=True)
class PruneCounts:
    refresh_tokens: int
    revocations: int
    audit_entries: int
    login_failures: int


async def prune(
    session: AsyncSession,
    now: int,
    *,
    audit_retention: int,
    token_lifetime: int | None = None,
    leeway: int = 0,
    login_failures: bool = False,
) -> PruneCounts:
    """Delete refresh tokens nothing needs (``RefreshTokenRepository.prune``), expired
    revocations, and audit entries past retention.

    ``leeway`` is the verifiers' clock tolerance: refresh tokens whose access token it
    still lets through are kept. ``token_lifetime`` (the longest access-token lifetime
    plus leeway) also removes not-before times no unexpired token can predate; ``login_failures``
    removes the failure counters whose ``expires_at`` has come, the expiry the
    throttle gave each (the end of its quiet window or of its lock), so this agrees
    with the throttle's own pruning. None and False keep them.
    """
    check_time("now", now)
    check_count("audit_retention", audit_retention)
    not_before_until = None
    if token_lifetime is not None:
        not_before_until = max(0, now - check_count("token_lifetime", token_lifetime))
    failures = 0
    if login_failures:
        failures = await LoginFailureRepository(session).prune(now)
    return PruneCounts(
        refresh_tokens=await RefreshTokenRepository(session).prune(now, leeway=leeway),
        revocations=await RevocationRepository(session).prune(
            now, not_before_until=not_before_until
        ),
        audit_entries=await AuditRepository(session).prune(max(0, now - audit_retention)),
        login_failures=failures,
    )
