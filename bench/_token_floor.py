"""The calibration floor of the server benchmark: the least a token endpoint can cost on
this stack.

A raw ASGI app on the same uvicorn, httptools and ``CoalescingHttpToolsProtocol`` as
``tokensmith serve``, signing with the same JOSE core: it checks HTTP Basic against a
SHA-256 of the secret, takes the one form body the bench sends, signs the same claims
(``typ: at+jwt``, a kid, a fresh jti) and answers with the server's own
``NoStoreJSONResponse``. It has none of the server's work around that: no strict form
parsing, no throttle, no client cache, no audit row, no access log, no Starlette app
around it. The gap between
the two, measured in the same run, is what the server's own code costs; the floor's
ratios say how much of a target the stack itself leaves.

It also publishes its public key at ``/.well-known/jwks.json``, so the bench's gate
verifies its tokens as it does the server's. Run by ``_server_proc.FloorServer``:
``python bench/_token_floor.py --port P --alg A``, with the client's secret in
``BENCH_FLOOR_SECRET`` (never in argv).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import signal
import time
from typing import Any

import uvicorn

from tokensmith.cli.serve import HTTP_PROTOCOL
from tokensmith.jose import JWK, JWKSet, encode_jwt, new_jti
from tokensmith.server.responses import NoStoreJSONResponse
from tokensmith.server.services.tokens_access import ACCESS_TOKEN_TYP

CLIENT_ID = "bench"
AUDIENCE = "bench-api"
BODY = b"grant_type=client_credentials&scope=api"


def token_app(alg: str, secret: str, issuer: str) -> Any:
    key = JWK.generate(alg)
    expected = hashlib.sha256(secret.encode()).digest()
    jwks = JWKSet([key.public()]).to_dict()

    async def answer(send: Any, status: int, content: Any) -> None:
        # The server's own answer object (its prebuilt header lines and encoder), sent
        # without the Starlette app around it.
        response = NoStoreJSONResponse(content, status)
        start = {"type": "http.response.start", "status": status}
        await send({**start, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/readyz":
            await answer(send, 200, {"status": "ok"})
            return
        if scope["path"] == "/.well-known/jwks.json":  # for the bench's gate, not timed
            await answer(send, 200, jwks)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        auth = dict(scope["headers"]).get(b"authorization", b"")
        client_id, _, given = base64.b64decode(auth[6:]).decode().partition(":")
        digest = hashlib.sha256(given.encode()).digest()
        if client_id != CLIENT_ID or not hmac.compare_digest(digest, expected) or body != BODY:
            await answer(send, 401, {"error": "invalid_client"})
            return
        now = int(time.time())
        claims = {
            "iss": issuer, "sub": client_id, "aud": AUDIENCE, "exp": now + 900, "iat": now,
            "jti": new_jti(), "client_id": client_id, "scope": "api",
        }  # fmt: skip
        token = encode_jwt(claims, key, alg=alg, typ=ACCESS_TOKEN_TYP)
        reply = {"access_token": token, "token_type": "Bearer", "expires_in": 900, "scope": "api"}
        await answer(send, 200, reply)

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--alg", required=True)
    args = p.parse_args()
    issuer = f"http://127.0.0.1:{args.port}"
    app = token_app(args.alg, os.environ["BENCH_FLOOR_SECRET"], issuer)
    # As `tokensmith serve`: uvicorn raises the signal again after its graceful shutdown;
    # a no-op handler makes that exit 0, so the report's exit codes compare alike.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _sig, _frame: None)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        http=HTTP_PROTOCOL,  # as `tokensmith serve`
        loop="asyncio",
        access_log=False,
        log_level="warning",
        lifespan="off",  # nothing to start or stop
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
