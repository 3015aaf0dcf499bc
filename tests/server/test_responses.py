"""``NoStoreJSONResponse`` answers exactly what ``JSONResponse(..., headers=NO_STORE)`` would."""

from __future__ import annotations

from typing import Any

import pytest

from tokensmith.server.http_errors import NO_STORE
from tokensmith.server.responses import JSONResponse, NoStoreJSONResponse

BODIES: list[Any] = [
    {"access_token": "a.b.c", "token_type": "Bearer", "expires_in": 900, "scope": "api"},
    {"name": "Zoë 🙂", "list": [1, 2.5, None, True]},
    {},
]


@pytest.mark.parametrize("status", [200, 201, 400])
@pytest.mark.parametrize("body", BODIES)
def test_same_bytes_and_headers_as_the_generic_response(body: Any, status: int) -> None:
    fast = NoStoreJSONResponse(body, status)
    generic = JSONResponse(body, status, headers=NO_STORE)
    assert fast.status_code == generic.status_code == status
    assert fast.body == generic.body
    assert sorted(fast.raw_headers) == sorted(generic.raw_headers)
    assert dict(fast.raw_headers)[b"content-length"] == str(len(fast.body)).encode()
    assert fast.background is None


def test_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(ValueError):
        NoStoreJSONResponse({"x": float("nan")})
