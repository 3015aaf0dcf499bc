"""Argument checks shared by the repositories.

SQLite stores whatever it is given (a 300-character kid in a VARCHAR(255), a
float in a BIGINT); PostgreSQL refuses it. Checking here makes both behave
alike, and keeps programmer mistakes (a float timestamp, a bare string where a
list belongs) out of the rows. These are TypeError/ValueError: the server
validates client input before it reaches the store.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy.engine import CursorResult, Result

from .models import MAX_NAME

__all__ = [
    "check_count",
    "check_flag",
    "check_instant",
    "check_name",
    "check_names",
    "check_text",
    "check_time",
    "inserted_id",
    "rowcount",
]


def check_time(name: str, value: object, *, optional: bool = False) -> None:
    """Whole, non-negative Unix seconds (bool is not a time, though it is an int)."""
    if value is None and optional:
        return
    if type(value) is not int:
        raise TypeError(f"{name} must be an int (Unix seconds)")
    if value < 0:
        raise ValueError(f"{name} must not be negative")


def check_instant(name: str, value: object) -> float:
    """Seconds since the epoch with a fraction (the throttle's ``Clock.now()``): an int or
    a float, finite and non-negative; returned as a float."""
    if type(value) not in (int, float):
        raise TypeError(f"{name} must be an int or a float (seconds)")
    assert isinstance(value, int | float)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite")
    if value < 0:
        raise ValueError(f"{name} must not be negative")
    return float(value)


def check_count(name: str, value: object, *, minimum: int = 0) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}")
    return value


def check_name(name: str, value: object, *, max_length: int = MAX_NAME) -> str:
    """A non-empty string that fits its column and is Unicode text."""
    if type(value) is not str:
        raise TypeError(f"{name} must be a str")
    if not value:
        raise ValueError(f"{name} must not be empty")
    if len(value) > max_length:
        raise ValueError(f"{name} must be at most {max_length} characters")
    check_text(name, value)
    return value


def check_text(name: str, value: str) -> None:
    """No lone surrogate: such a str (an undecodable byte of a command-line argument,
    a "\\ud800" JSON escape) is stored by SQLite but cannot be encoded as UTF-8, so
    every later answer that shows it would fail."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{name} must be Unicode text (it holds a lone surrogate)") from None


def check_names(name: str, values: Iterable[str], *, max_length: int = 255) -> list[str]:
    """A list of distinct non-empty strings, sorted so equal sets store equal JSON."""
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a collection of strings, not one string")
    checked = {check_name(f"an item of {name}", v, max_length=max_length) for v in values}
    return sorted(checked)


def check_flag(name: str, value: object) -> bool:
    if type(value) is not bool:
        raise TypeError(f"{name} must be a bool")
    return value


def rowcount(result: Result[Any]) -> int:
    """Rows matched by an UPDATE or DELETE (Core statements return a CursorResult)."""
    return cast(CursorResult[Any], result).rowcount


def inserted_id(result: Result[Any]) -> int:
    """The generated primary key of a single-row Core INSERT."""
    key = cast(CursorResult[Any], result).inserted_primary_key
    assert key is not None and key[0] is not None
    return int(key[0])
