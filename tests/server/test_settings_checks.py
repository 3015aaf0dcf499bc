"""The single-value rules behind the settings: durations, secrets, the issuer URL."""

from __future__ import annotations

from typing import Annotated

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tokensmith.server.settings_checks import (
    DAY,
    Duration,
    check_secret_text,
    format_duration,
    is_local_host,
    normalize_issuer,
    parse_duration,
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (60, "1m"), (90, "90s"), (3600, "1h"), (5400, "90m"), (DAY, "1d")],
)
def test_format_duration_uses_the_largest_exact_unit(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=3660 * DAY))
def test_formatted_durations_parse_back(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize("value", [True, False, 1.0, None, [60], b"60"])
def test_parse_duration_refuses_non_integers(value: object) -> None:
    with pytest.raises(ValueError, match="whole number of seconds"):
        parse_duration(value)


def test_long_malformed_durations_are_shown_shortened() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("x" * 500)
    assert "x" * 21 not in str(info.value)


def test_duration_metadata_bounds_the_value() -> None:
    class Model(BaseModel):
        lifetime: Annotated[int, Duration(60, 3600)]

    assert Model.model_validate({"lifetime": "15m"}).lifetime == 900
    assert Model(lifetime=60).lifetime == 60
    assert Model.model_validate({"lifetime": "1h"}).lifetime == 3600
    for bad in ("59s", "61m", 0):
        with pytest.raises(ValidationError, match="between 1m and 1h"):
            Model.model_validate({"lifetime": bad})


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "changeme",
        "ChangeMe!2024-prod-xxxxxxxxxxxxxxxxxxxxx",
        "replace_me_0123456789abcdefghijklmnopqrs",
        "Change Me 0123456789abcdefghijklmnopqrstu",
        "password1234567890abcdefghijklmnopqrstuv",
        "insert-your-secret-here-0123456789abcdef",
        "example-0123456789abcdefghijklmnopqrstuv",
        "dummy-0123456789abcdefghijklmnopqrstuvwx",
        "default-0123456789abcdefghijklmnopqrstuv",
        "PLACEHOLDER-0123456789abcdefghijklmnopqr",
        "x" * 64,
        "0123456" * 10,  # seven distinct characters
    ],
)
def test_placeholder_secrets_are_refused_without_being_shown(text: str) -> None:
    with pytest.raises(ValueError) as info:
        check_secret_text(text)
    if len(text.strip()) > 8:
        assert text not in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "q7Zr0pXv3NfLk9WtBc2MhYs8JdGa5EuR1iOw6TnPb4K",  # token_urlsafe(32)-shaped
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # hex
        "01234567",  # eight distinct characters: the floor
    ],
)
def test_random_looking_secrets_pass(text: str) -> None:
    check_secret_text(text)


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.0.0.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        ("", False),
    ],
)
def test_is_local_host(host: str, local: bool) -> None:
    assert is_local_host(host) is local


@pytest.mark.parametrize(
    ("value", "normalized"),
    [
        ("https://auth.example.com", "https://auth.example.com"),
        ("https://auth.example.com/", "https://auth.example.com"),
        ("https://auth.example.com/t/1//", "https://auth.example.com/t/1"),
        ("HTTP://LOCALHOST:8000", "http://localhost:8000"),
        ("https://[::1]:8443", "https://[::1]:8443"),
    ],
)
def test_normalize_issuer(value: str, normalized: str) -> None:
    assert normalize_issuer(value) == normalized
    assert normalize_issuer(normalized) == normalized


@pytest.mark.parametrize(
    "value",
    [
        "https://a.example/?",
        "https://a.example/#",
        "https://@a.example",
        "https://a.example:0x50",
        "https://a.example\n",
        "https://a.example\t/x",
        "//a.example",
        "javascript:alert(1)",
    ],
)
def test_normalize_issuer_refuses(value: str) -> None:
    with pytest.raises(ValueError):
        normalize_issuer(value)
