"""``parse_pairs``: the fast path for forms with nothing to unescape agrees with ``parse_qsl``."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest

from tokensmith.server.forms import MAX_FIELDS, parse_pairs
from tokensmith.server.services import InvalidRequest


def _reference(text: str) -> list[tuple[str, str]] | None:
    """The pairs as ``parse_qsl`` in strict mode gives them; None where it refuses."""
    try:
        return parse_qsl(
            text,
            strict_parsing=True,
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (ValueError, UnicodeDecodeError):
        return None


def _parsed(text: str) -> list[tuple[str, str]] | None:
    try:
        return parse_pairs(text)
    except InvalidRequest:
        return None


PLAIN = [
    "",
    "grant_type=client_credentials&scope=api",
    "a=",
    "=b",
    "=",
    "a=b=c",
    "a",
    "a=b&",
    "&a=b",
    "a=b&&c=d",
    "&",
    "a=b;c=d",
    "é=ü",
    "&".join(f"k{i}=v" for i in range(MAX_FIELDS)),
    "&".join(f"k{i}=v" for i in range(MAX_FIELDS + 1)),
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_forms_parse_as_parse_qsl_does(text: str) -> None:
    assert _parsed(text) == _reference(text)


def test_random_forms_parse_as_parse_qsl_does() -> None:
    rng = random.Random(20260101)
    for _ in range(3000):
        text = "".join(rng.choice("ab=&é;") for _ in range(rng.randrange(12)))
        assert _parsed(text) == _reference(text), text


def test_escapes_still_take_the_strict_path() -> None:
    assert parse_pairs("a=b+c&d=%41") == [("a", "b c"), ("d", "A")]
    with pytest.raises(InvalidRequest):
        parse_pairs("a=%zz")
    with pytest.raises(InvalidRequest):
        parse_pairs("a=%ff")  # not UTF-8
