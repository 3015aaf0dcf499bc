"""Strict JSON request bodies for the admin API.

``application/json`` (UTF-8) only, at most 64 KiB, one object, no duplicate member
names (which one would win differs between parsers), no NaN or Infinity, no lone
surrogate escapes (RFC 7493 section 2.1), and only the members the endpoint takes:
anything else is a 400 ``invalid_request``, never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from starlette.requests import Request

from tokensmith.server.forms import check_content_type, read_body, single_header
from tokensmith.server.services import InvalidRequest

__all__ = ["read_json", "string_list"]

_JSON_TYPE = "application/json"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidRequest("The JSON body repeats a member name.")
    return result


def _no_constants(name: str) -> Any:
    raise InvalidRequest("The JSON body holds NaN or Infinity.")


async def read_json(
    request: Request, *, required: Iterable[str] = (), optional: Iterable[str] = ()
) -> dict[str, Any]:
    """The body's object; ``InvalidRequest`` for anything malformed, missing or extra.

    With no required member, an empty body stands for ``{}``, with a JSON content type
    or none (``curl -X POST -H 'Content-Type: application/json'`` sends one).
    """
    content_type = single_header(request, "content-type")
    needed = set(required)
    if content_type is None and not needed:
        if await read_body(request):
            raise InvalidRequest("The body must be application/json.")
        return {}
    check_content_type(content_type, _JSON_TYPE)
    raw = await read_body(request)
    if not raw and not needed:
        return {}
    try:
        value = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("The body is not valid JSON.") from None
    try:
        # Only an unpaired "\\ud800" escape makes text that UTF-8 cannot encode; stored,
        # it would fail every later answer that shows it.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest("The JSON body holds a lone surrogate escape.") from None
    except RecursionError:  # as deep as the parser allowed, deeper than the encoder does
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise InvalidRequest("The body must be a JSON object.")
    allowed = needed | set(optional)
    if not needed <= value.keys():
        raise InvalidRequest(f"The body must have the members {sorted(needed)}.")
    extra = value.keys() - allowed
    if extra:
        raise InvalidRequest(f"The body may only have the members {sorted(allowed)}.")
    return value


def string_list(value: object, name: str, *, max_items: int = 100) -> list[str]:
    """A JSON array of strings, as the admin API's list members must be."""
    if (
        not isinstance(value, list)
        or len(value) > max_items
        or not all(isinstance(item, str) for item in value)
    ):
        raise InvalidRequest(f"{name} must be an array of at most {max_items} strings.")
    return list(value)
