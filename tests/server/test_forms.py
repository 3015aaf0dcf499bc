"""Forms: ``parse_pairs`` agrees with ``parse_qsl``; ``read_body`` bounds the body."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl

import pytest
from starlette.requests import Request

from tokensmith.server.forms import MAX_BODY, MAX_FIELDS, parse_pairs, read_body
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


def _request(content_length: str, body: bytes = b"") -> Request:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    headers = [(b"content-length", content_length.encode("utf-8"))]
    return Request({"type": "http", "method": "POST", "headers": headers}, receive)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("length", "message"),
    [
        ("\u00b2", "malformed"),  # a digit to str.isdigit, not to int()
        ("\u0663", "malformed"),  # Arabic-Indic three
        ("-1", "malformed"),
        ("1" * 5000, "too large"),  # past int()'s digit limit
        (str(MAX_BODY + 1), "too large"),
    ],
)
async def test_a_bad_content_length_is_a_400(length: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        await read_body(_request(length))


@pytest.mark.anyio
async def test_a_good_content_length_reads_the_body() -> None:
    assert await read_body(_request("3", b"a=b")) == b"a=b"
