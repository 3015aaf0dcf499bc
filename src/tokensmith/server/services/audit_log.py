"""Reading the audit log, newest first, a page at a time (the CLI and the admin API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tokensmith.store import AuditEntry, Database, Repositories

from .audit_writer import AuditWriter

__all__ = ["MAX_AUDIT_PAGE", "AuditLog", "AuditPage", "audit_address", "audit_summary"]

MAX_AUDIT_PAGE = 500
_MAX_ADDRESS = 255  # the column's length


def audit_address(address: str | None) -> str | None:
    """The ``client_address`` of a row written on behalf of an HTTP request (the peer
    ``forms.client_address`` gives), cut to the column; None without one (the CLI)."""
    return address[:_MAX_ADDRESS] if address else None


def audit_summary(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the CLI's ``--json`` and the admin API show it."""
    return {
        "id": entry.id,
        "at": entry.at,
        "event": entry.event.value,
        "actor": entry.actor,
        "subject": entry.subject,
        "client_address": entry.client_address,
        "detail": dict(entry.detail),
    }


@dataclass(frozen=True, slots=True)
class AuditPage:
    entries: list[AuditEntry]
    #: The ``before`` of the next (older) page; None on the last one.
    next_before: int | None


class AuditLog:
    """``writer``: the batching ``AuditWriter`` of this process, flushed before each read so
    a page shows every row this process has recorded (other processes' batches arrive
    within their flush interval)."""

    def __init__(self, db: Database, writer: AuditWriter | None = None) -> None:
        self.db = db
        self.writer = writer

    async def page(
        self, *, before: int | None = None, since: int | None = None, limit: int = 100
    ) -> AuditPage:
        """Entries with an id below ``before`` and a time at or after ``since``."""
        limit = max(1, min(limit, MAX_AUDIT_PAGE))
        if self.writer is not None:
            await self.writer.flush()
        async with self.db.read() as session:
            # One more than asked tells whether an older page exists without a count.
            entries = await Repositories(session).audit.page(
                before_id=before, limit=limit + 1, since=since
            )
        more = len(entries) > limit
        entries = entries[:limit]
        return AuditPage(entries, entries[-1].id if more and entries else None)
