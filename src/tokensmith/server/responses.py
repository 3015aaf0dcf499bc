"""``JSONResponse``: Starlette's, rendered by one shared encoder.

Starlette's ``render`` calls ``json.dumps`` with non-default options, which builds a new
``JSONEncoder`` on every call; the token endpoint answers with JSON on every request, so
the encoder is built once here. The options are Starlette's (compact separators,
``ensure_ascii=False``, ``allow_nan=False``), so the bytes are the same.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse as _StarletteJSONResponse

__all__ = ["JSONResponse"]

_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class JSONResponse(_StarletteJSONResponse):
    def render(self, content: Any) -> bytes:
        return _ENCODER.encode(content).encode("utf-8")
