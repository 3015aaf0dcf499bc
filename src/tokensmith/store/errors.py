"""Errors of the store: each with a stable ``code``, none echoing a value it refused.

Usernames are not secrets, but people type passwords into username fields, so
even they stay out of messages.
"""

from __future__ import annotations

from tokensmith.errors import TokensmithError

__all__ = [
    "ClientIdTaken",
    "ConcurrentChange",
    "DatabaseUnavailable",
    "DatabaseUnsupported",
    "InvalidUsername",
    "StoreError",
    "UnknownClient",
    "UnknownSchemaRevision",
    "UnknownUser",
    "UsernameTaken",
]


class StoreError(TokensmithError):
    """Root of the store's errors."""

    code = "store_error"
    description = "The stored data could not be changed."


class DatabaseUnavailable(StoreError):
    """The database could not be reached or stayed locked (the server answers 503)."""

    code = "database_unavailable"
    description = "The database is unavailable."


class DatabaseUnsupported(StoreError):
    """The database URL names a dialect or driver that is unknown, synchronous or not installed."""

    code = "database_unsupported"
    description = "The database URL cannot be used."


class UnknownSchemaRevision(StoreError):
    """The database's schema is at a revision this code does not know (a newer version's).

    Raised by ``upgrade`` before anything is changed; the message names the revision
    read from the database, never the database URL (it may hold a password).
    """

    code = "unknown_schema_revision"
    description = "The database schema is at a revision this version does not know."


class ConcurrentChange(StoreError):
    """Another instance changed the rows this change was planned from; plan again and retry."""

    code = "concurrent_change"
    description = "The data changed concurrently; retry."


class InvalidUsername(StoreError):
    """A username that no user may have (empty, too long, control characters...)."""

    code = "invalid_username"
    description = "The username is not valid."


class UsernameTaken(StoreError):
    code = "username_taken"
    description = "A user with that username already exists."


class ClientIdTaken(StoreError):
    code = "client_id_taken"
    description = "A client with that client_id already exists."


class UnknownUser(StoreError):
    code = "unknown_user"
    description = "No user has that id."


class UnknownClient(StoreError):
    code = "unknown_client"
    description = "No client has that client_id."
