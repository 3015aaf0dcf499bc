"""``JSONResponse``: Starlette's, rendered by one shared encoder; ``NoStoreJSONResponse``.

Starlette's ``render`` calls ``json.dumps`` with non-default options, which builds a new
``JSONEncoder`` on every call; the token endpoint answers with JSON on every request, so
the encoder is built once here. The options are Starlette's (compact separators,
``ensure_ascii=False``, ``allow_nan=False``), so the bytes are the same.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse as _StarletteJSONResponse

__all__ = ["NO_STORE", "JSONResponse", "NoStoreJSONResponse"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

#: RFC 6749 section 5.1: token responses must not be cached (nor any answer that holds
#: token state or an error).
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# The header lines every NoStoreJSONResponse starts with, in their wire form.
_NO_STORE_JSON = (
    *(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in NO_STORE.items()
    ),
    (b"content-type", b"application/json"),
)


class JSONResponse(_StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("utf-8")


class NoStoreJSONResponse(JSONResponse):
    """``JSONResponse(content, status, headers=NO_STORE)``, its header lines prebuilt.

    Every token request is answered with one: Starlette's ``init_headers`` lower-cases,
    encodes and searches the given headers on each response, which cost more than
    rendering the body (see BENCHMARKS.md, sixth session).
    """

    def __init__(self, content: Any, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = self.render(content)
        length = (b"content-length", str(len(self.body)).encode("ascii"))
        self.raw_headers = [*_NO_STORE_JSON, length]
