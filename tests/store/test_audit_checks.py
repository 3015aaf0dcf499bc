"""``audit_values``' checks: the fast path for flat details decides exactly as the full one."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import pytest

from conftest import NOW
from tokensmith.store import AuditEvent
from tokensmith.store.audit import _SECRET_KEYS, MAX_DETAIL, _flat_detail, audit_values


class Color(StrEnum):
    RED = "red"


def _reference(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The rule as written before the fast path: no secret key at any depth, JSON, bounded."""

    def refuse(value: object) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError("detail keys must be strings")
                if key.casefold() in _SECRET_KEYS:
                    raise ValueError("secret")
                refuse(item)
        elif isinstance(value, list | tuple):
            for item in value:
                refuse(item)

    refuse(detail)
    try:
        text = json.dumps(detail, allow_nan=False)
    except (TypeError, ValueError):
        raise TypeError("not JSON") from None
    try:
        json.dumps(detail, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a lone surrogate") from None
    if len(text.encode("utf-8")) > MAX_DETAIL:
        raise ValueError("too large")
    return dict(detail)


def _outcome(check: Any, detail: Mapping[str, Any]) -> object:
    try:
        return check(detail)
    except (TypeError, ValueError) as exc:
        return type(exc)


DETAILS: list[Mapping[str, Any]] = [
    {},
    {"grant_type": "client_credentials", "jti": "x" * 43, "scope": "api read write"},
    {"n": 0, "ok": True, "none": None, "big": 2**63 - 1, "small": -(2**63) + 1},
    {"huge": 2**70},
    {"ratio": 1.5},
    {"nan": float("nan")},
    {"nested": {"a": 1}},
    {"list": [1, 2]},
    {"Password": "x"},
    {"ok": 1, "TOKEN": "x"},
    {"ratio": 1.5, "secret": "x"},
    {"secret": 1.5},
    {1: "x"},
    {"a": object()},
    {"color": Color.RED},
    OrderedDict(a="b"),
    # Around the size bound, ASCII, escaped, outside ASCII and outside the BMP.
    *({"blob": "x" * n} for n in (600, 679, 680, 4070, 4084, 4085, 4086, 5000)),
    *({"blob": "\x01" * n} for n in (600, 678, 679, 680, 681)),
    *({"blob": "é" * n} for n in (300, 340, 679, 680, 681)),
    *({"blob": "😀" * n} for n in (300, 339, 340, 341)),
    # Lone surrogates (which no UTF-8 answer can show) anywhere; a paired one is fine.
    {"role": "A\udcff"},
    {"\ud800": 1},
    {"nested": {"a": "\ud800"}},
    {"list": ["x", "\udfff"]},
    {"ok": "\U0001f600", "also": "\ud83d\ude00".encode("utf-16", "surrogatepass").decode("utf-16")},
    {f"k{i}": i for i in range(300)},
    {f"k{i}": i for i in range(600)},
]


@pytest.mark.parametrize("detail", DETAILS, ids=range(len(DETAILS)))
def test_every_detail_is_decided_as_by_the_full_check(detail: Mapping[str, Any]) -> None:
    def check(value: Mapping[str, Any]) -> dict[str, Any]:
        return audit_values(AuditEvent.LOGIN_OK, at=NOW, detail=value).detail

    expected = _outcome(_reference, detail)
    got = _outcome(check, detail)
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got == expected and got is not detail
    else:
        assert got is expected


def test_a_token_issued_detail_takes_the_fast_path() -> None:
    detail = {"grant_type": "client_credentials", "jti": "j" * 43, "scope": "a b c"}
    assert _flat_detail(detail) == detail
    assert _flat_detail({"nested": {}}) is None  # left to the full check


@pytest.mark.parametrize("event", [AuditEvent.TOKEN_ISSUED, "token_issued"])
def test_events_are_stored_as_their_values(event: str) -> None:
    row = audit_values(event, at=NOW)
    assert row.event == "token_issued" and type(row.event) is str


@pytest.mark.parametrize("event", ["coffee_made", "", 5, None])
def test_unknown_events_are_refused(event: Any) -> None:
    with pytest.raises(ValueError):
        audit_values(event, at=NOW)
