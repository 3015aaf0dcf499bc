"""The application server under test in ``app_bench.py``, run as its own process.

``build_app`` is the example application server (``examples/app_server/app.py``:
``create_app``, with ``BearerAuthMiddleware`` and ``require``) unchanged, plus one route the
example does not have:

- ``POST /create-open``: the same handler as ``POST /create`` with no dependency, and a
  response of the same length (``{"created": "ok", "by": "<9 chars>"}``): the app's own
  unauthenticated twin, with the middleware still installed (a request without a token
  passes through it).

``build_bare_app`` is FastAPI with ``POST /create-open`` only and no middleware: the
framework's ceiling, to show what the middleware costs a request that carries no token.

The verifier is offline: ``AsyncVerifier.from_jwks`` on a JWK Set file, no token server.

    python bench/_app_under_test.py --port P [--loop asyncio|uvloop] [--http h11|httptools]
                                    [--bare] [--access-log]

Environment: ``BENCH_APP_JWKS`` (the JWK Set file), ``BENCH_APP_ISSUER``,
``BENCH_APP_AUDIENCE``. One uvicorn worker; the caller pins it to a CPU (``taskset``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `examples` is a package at the repository's root

from examples.app_server.app import create_app  # noqa: E402
from fastapi import FastAPI  # noqa: E402

from tokensmith.verify import AsyncVerifier, VerifierConfig  # noqa: E402

#: The ``sub`` of the bench's tokens; the open route answers a name of the same length.
SUB = "editor-42"
OPEN_BY = "nobody-42"


def build_app(jwks: Path, issuer: str, audience: str) -> FastAPI:
    config = VerifierConfig(issuer=issuer, audience=audience)
    app = create_app(config, AsyncVerifier.from_jwks(jwks, config))

    @app.post("/create-open")
    async def create_open() -> dict[str, str]:
        return {"created": "ok", "by": OPEN_BY}

    return app


def build_bare_app() -> FastAPI:
    app = FastAPI(title="bare")

    @app.post("/create-open")
    async def create_open() -> dict[str, str]:
        return {"created": "ok", "by": OPEN_BY}

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    p.add_argument("--http", default="h11", choices=("h11", "httptools"))
    p.add_argument("--bare", action="store_true", help="no middleware, /create-open only")
    p.add_argument("--access-log", action="store_true", help="uvicorn's access log on stderr")
    args = p.parse_args()

    import uvicorn

    if args.bare:
        app = build_bare_app()
    else:
        env = os.environ
        app = build_app(
            Path(env["BENCH_APP_JWKS"]), env["BENCH_APP_ISSUER"], env["BENCH_APP_AUDIENCE"]
        )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop=args.loop,
        http=args.http,
        workers=1,
        log_level="info" if args.access_log else "warning",
        access_log=args.access_log,
    )


if __name__ == "__main__":
    main()
