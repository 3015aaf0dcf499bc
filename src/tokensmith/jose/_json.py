"""Strict JSON for JOSE headers and JWT claims (RFC 7515 section 5.2, RFC 7519 section 4).

Python's ``json`` keeps the last of duplicate members, accepts ``NaN`` and
``Infinity``, and turns ``1e999`` into infinity. Here duplicates, non-finite
numbers and deep nesting are refused, the text must be UTF-8, and the top
level must be an object.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_DEPTH", "JSONError", "dumps_compact", "loads_object"]

MAX_DEPTH = 32


class JSONError(ValueError):
    """The text is not an acceptable JSON object."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise JSONError("duplicate member name")
    return obj


def _refuse_constant(name: str) -> Any:
    raise JSONError(f"non-finite number {name}")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONError("number overflows to infinity")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates,
    parse_constant=_refuse_constant,
    parse_float=_finite_float,
)
_decode = _DECODER.decode
# Set by JSONDecoder.__init__ (the C scanner) but absent from typeshed's stub.
_scan: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
_JSON_WHITESPACE = " \t\n\r"
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False, ensure_ascii=False)
_encode = _ENCODER.encode
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _too_deep(text: str) -> bool:
    # Only texts with many brackets in total pay for the exact scan.
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return False
    depth = 0
    for char in _STRING.sub("", text):
        if char in "{[":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "}]":
            depth -= 1
    return False


def loads_object(data: bytes) -> dict[str, Any]:
    """Parse UTF-8 JSON text that must hold one object; raise ``JSONError`` otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise JSONError("not UTF-8") from None
    if _too_deep(text):
        raise JSONError("nesting too deep")
    try:
        # scan_once skips JSONDecoder.decode's Python-level wrapping; text with
        # leading whitespace (rare, but valid JSON) takes the full decoder.
        try:
            obj, end = _scan(text, 0)
        except StopIteration:
            obj, end = _decode(text), len(text)
        if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
            raise JSONError("extra data after the JSON value")
    except JSONError:
        raise
    except (ValueError, RecursionError, StopIteration):
        # json.JSONDecodeError, int digit limits; the message may quote input.
        raise JSONError("not valid JSON") from None
    if type(obj) is not dict:
        raise JSONError("not a JSON object")
    return obj


def dumps_compact(obj: Any) -> bytes:
    """Serialize without whitespace, refusing NaN and infinity, as UTF-8."""
    return _encode(obj).encode("utf-8")
