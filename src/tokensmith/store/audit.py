"""The audit log of security events: who did what, when, from where; never a secret."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from ._checks import (
    check_count,
    check_name,
    check_text,
    check_time,
    inserted_id,
    rowcount,
)
from .models import AuditLogRow, table_of

__all__ = ["AuditEntry", "AuditEvent", "AuditRepository", "AuditRow", "audit_values"]

_audit = table_of(AuditLogRow)
_INSERT = insert(_audit)  # built once: a row goes with most writes (refresh_tokens.py)

# Detail keys that would hold a secret. A guard against the obvious slip
# (logging the request form), not a proof: callers still choose what they log.
_SECRET_KEYS = frozenset(
    {
        "password",
        "new_password",
        "secret",
        "client_secret",
        "token",
        "access_token",
        "refresh_token",
        "password_hash",
        "secret_hash",
        "token_hash",
        "private_key",
        "sealed_private",
        "master_key",
    }
)
MAX_DETAIL = 4096  # bytes of JSON

_COLUMNS = ("at", "event", "actor", "subject", "client_address", "detail")
# 6 * 150 = 900 parameters: under the 999 of SQLite builds older than 3.32.
_ROWS_PER_INSERT = 150


@functools.lru_cache(maxsize=_ROWS_PER_INSERT)
def _sqlite_insert(rows: int) -> str:
    """``INSERT ... VALUES (?, ...), (?, ...)`` for ``rows`` rows, in the driver's qmark style."""
    one = "(" + ", ".join("?" * len(_COLUMNS)) + ")"
    return f"INSERT INTO {_audit.name} ({', '.join(_COLUMNS)}) VALUES " + ", ".join([one] * rows)


class AuditEvent(StrEnum):
    LOGIN_OK = "login_ok"
    LOGIN_FAILED = "login_failed"
    THROTTLED = "throttled"
    TOKEN_ISSUED = "token_issued"
    REFRESH_REUSE_DETECTED = "refresh_reuse_detected"
    TOKEN_REVOKED = "token_revoked"
    KEY_CREATED = "key_created"
    KEY_ACTIVATED = "key_activated"
    KEY_RETIRED = "key_retired"
    KEY_DELETED = "key_deleted"
    KEY_REVOKED = "key_revoked"
    USER_CREATED = "user_created"
    USER_CHANGED = "user_changed"
    CLIENT_CREATED = "client_created"
    CLIENT_CHANGED = "client_changed"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: int
    event: AuditEvent
    actor: str | None
    subject: str | None
    client_address: str | None
    detail: Mapping[str, Any]


# Per item: two quotes around the key, ": ", ", ", and room for the value's own quotes.
_ITEM_OVERHEAD = 8
_INT_BOUND = 2**63  # such an int renders in at most 20 characters
# Every audit value, by value and by member (a StrEnum member hashes as its value).
_EVENT_VALUES: dict[str, str] = {event.value: event.value for event in AuditEvent}


def _flat_detail(detail: Mapping[str, Any]) -> dict[str, Any] | None:
    """The checked copy of a flat dict whose JSON is surely within ``MAX_DETAIL``; None
    when that is not certain (anything nested, a float, a long text), for the full check.

    Token issuance writes such a row per request: this skips rendering it to JSON.
    """
    if type(detail) is not dict:
        return None
    size = 2  # the braces
    for key, value in detail.items():
        if type(key) is not str:
            return None
        kind = type(value)
        # At most how many bytes a text takes in a JSON string (ensure_ascii): 6 for an
        # ASCII character ("\\u001f"), 12 for any other (two escapes past the BMP).
        if key.isascii():
            size += len(key) * 6 + _ITEM_OVERHEAD
        else:
            size += len(key) * 12 + _ITEM_OVERHEAD
            check_text("a detail key", key)
        if kind is str:
            if value.isascii():
                size += len(value) * 6
            else:
                size += len(value) * 12
                check_text(f"detail {key!r}", value)
        elif kind is bool or value is None or (kind is int and -_INT_BOUND < value < _INT_BOUND):
            size += 20
        else:
            return None
        if key.casefold() in _SECRET_KEYS:
            raise ValueError(f"detail must not hold a secret (key {key!r})")
    if size > MAX_DETAIL:
        return None
    return dict(detail)


def _check_detail(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    if detail is None:
        return {}
    flat = _flat_detail(detail)
    if flat is not None:
        return flat
    if not isinstance(detail, Mapping):
        raise TypeError("detail must be a mapping")
    _refuse_secrets(detail)
    try:
        text = json.dumps(detail, allow_nan=False)
    except (TypeError, ValueError):
        raise TypeError("detail must hold JSON values only") from None
    # The escapes hide a lone surrogate; rendered as text, it cannot be encoded.
    check_text("detail", json.dumps(detail, ensure_ascii=False))
    if len(text.encode("utf-8")) > MAX_DETAIL:
        raise ValueError(f"detail must be at most {MAX_DETAIL} bytes of JSON")
    return dict(detail)


def _refuse_secrets(value: object) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError("detail keys must be strings")
            if key.casefold() in _SECRET_KEYS:
                raise ValueError(f"detail must not hold a secret (key {key!r})")
            _refuse_secrets(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _refuse_secrets(item)


def _optional_name(name: str, value: str | None) -> str | None:
    return None if value is None else check_name(name, value)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """The checked column values of one audit row, made only by ``audit_values``."""

    at: int
    event: str
    actor: str | None
    subject: str | None
    client_address: str | None
    detail: dict[str, Any]

    def as_values(self) -> tuple[Any, ...]:
        """The values in ``_COLUMNS`` order, ``detail`` as JSON text (what the JSON type stores)."""
        return (
            self.at,
            self.event,
            self.actor,
            self.subject,
            self.client_address,
            json.dumps(self.detail),
        )

    def as_params(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "event": self.event,
            "actor": self.actor,
            "subject": self.subject,
            "client_address": self.client_address,
            "detail": self.detail,
        }


def audit_values(
    event: AuditEvent | str,
    *,
    at: int,
    actor: str | None = None,
    subject: str | None = None,
    client_address: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditRow:
    """One audit row, checked (``record`` writes one, ``record_many`` several at once).

    Every check runs here, so a row made now and written later (batched) cannot fail its
    batch: ``event`` must be an ``AuditEvent`` value, names fit their columns, and
    ``detail`` is JSON without a secret's key.
    """
    check_time("at", at)
    value = _EVENT_VALUES.get(event) if isinstance(event, str) else None
    return AuditRow(
        at=at,
        event=AuditEvent(event).value if value is None else value,
        actor=_optional_name("actor", actor),
        subject=_optional_name("subject", subject),
        client_address=_optional_name("client_address", client_address),
        detail=_check_detail(detail),
    )


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def record(
        self,
        event: AuditEvent | str,
        *,
        at: int,
        actor: str | None = None,
        subject: str | None = None,
        client_address: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Append an event; returns its id. ``event`` must be an ``AuditEvent`` value."""
        values = audit_values(
            event,
            at=at,
            actor=actor,
            subject=subject,
            client_address=client_address,
            detail=detail,
        )
        result = await self.session.execute(_INSERT, values.as_params())
        return inserted_id(result)

    async def record_many(self, rows: Sequence[AuditRow]) -> int:
        """Append rows made by ``audit_values``, in order, in one statement; returns how many."""
        if not rows:
            return 0
        if not all(isinstance(row, AuditRow) for row in rows):
            raise TypeError("record_many takes rows made by audit_values")
        connection = await self.session.connection()
        if connection.dialect.name != "sqlite":
            await self.session.execute(_INSERT, [row.as_params() for row in rows])
            return len(rows)
        # One statement per chunk, not an executemany: the driver runs a SQLite
        # executemany one row per step, taking the GIL back from the event loop between
        # rows. Under load that handoff cost more than the insert itself (2-3x the
        # worker thread's CPU per row, measured on a serving process).
        for start in range(0, len(rows), _ROWS_PER_INSERT):
            chunk = rows[start : start + _ROWS_PER_INSERT]
            values: list[Any] = []
            for row in chunk:
                values += row.as_values()
            await connection.exec_driver_sql(_sqlite_insert(len(chunk)), tuple(values))
        return len(rows)

    async def page(
        self, *, before_id: int | None = None, limit: int = 100, since: int | None = None
    ) -> list[AuditEntry]:
        """Newest first: entries with an id below ``before_id`` and a time at or after ``since``.

        The next page is ``before_id=`` the last entry's id.
        """
        check_count("limit", limit, minimum=1)
        check_time("since", since, optional=True)
        query = select(_audit).order_by(_audit.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(_audit.c.id < before_id)
        if since is not None:
            query = query.where(_audit.c.at >= since)
        return [
            AuditEntry(
                id=row.id,
                at=row.at,
                event=AuditEvent(row.event),
                actor=row.actor,
                subject=row.subject,
                client_address=row.client_address,
                detail=row.detail,
            )
            for row in await self.session.execute(query)
        ]

    async def prune(self, before: int) -> int:
        """Delete entries older than ``before`` (now minus the retention); returns how many."""
        check_time("before", before)
        return rowcount(await self.session.execute(delete(_audit).where(_audit.c.at < before)))
