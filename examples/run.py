"""``make run``: the token server on 127.0.0.1:8000 and the application server on :8001.

The first run initialises ``$TOKENSMITH_DATA`` (default ``./var``) with keys, the demo
users and clients, and prints their generated passwords once; later runs reuse them.
Ctrl-C stops both servers; during the first run's setup it keeps nothing, so the next
run starts over.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.system import CREDENTIALS_FILE, Demo, prepare, running

TOKEN_PORT = 8000
APP_PORT = 8001


def _read(path: Path, field: str, name: str) -> str:
    script = f"import json; print(json.load(open('{path}'))['{field}'])"
    return f'{name}=$(python3 -c "{script}")'


def walkthrough(demo: Demo, fresh: bool) -> str:
    issuer, app, creds = demo.issuer, demo.app_url, Path(demo.data_dir) / CREDENTIALS_FILE
    shown = (
        f"""
  demo users, created now (passwords shown this once; kept for the demo in {creds}):
    john   role EDITOR   password {demo.john_password}
    admin  role ADMIN    password {demo.admin_password}
"""
        if fresh
        else f"\n  demo users john (EDITOR) and admin (ADMIN); credentials in {creds}\n"
    )
    auth = f"-u {demo.client_id}:$SECRET"
    login = f"curl -s {auth} -d grant_type=password {issuer}/oauth/token"
    field = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"{}\"])'"
    return f"""
  token server        {issuer}    (discovery: {issuer}/.well-known/openid-configuration)
  application server  {app}    (GET /public, GET /me, POST /create, POST /delete)
{shown}
  {_read(creds, "client_secret", "SECRET")}
  {_read(creds, "john_password", "JOHN_PW")}
  {_read(creds, "admin_password", "ADMIN_PW")}

  # log in as john (EDITOR) and as admin (ADMIN)
  {login} -d username=john --data-urlencode password="$JOHN_PW" > john.json
  JOHN=$({field.format("access_token")} < john.json)
  ADMIN=$({login} -d username=admin --data-urlencode password="$ADMIN_PW" \\
          | {field.format("access_token")})

  curl -s {app}/public                                             # 200, no token needed
  curl -s -H "Authorization: Bearer $JOHN" {app}/me                 # 200, john's claims
  curl -s -X POST -H "Authorization: Bearer $JOHN" {app}/create     # 200: EDITOR may create
  curl -si -X POST -H "Authorization: Bearer $JOHN" {app}/delete    # 403 insufficient_scope
  curl -s -X POST -H "Authorization: Bearer $ADMIN" {app}/delete    # 200: ADMIN may delete
  curl -si -X POST {app}/create                                     # 401, no token

  # refresh: a new pair; the refresh token rotates on every use
  curl -s {auth} -d grant_type=refresh_token \\
       -d refresh_token="$({field.format("refresh_token")} < john.json)" {issuer}/oauth/token

  # revoke john's access token: within one poll (5 s) the application server refuses it
  curl -s {auth} -d token="$JOHN" {issuer}/oauth/revoke
  sleep 6; curl -si -H "Authorization: Bearer $JOHN" {app}/me       # 401 invalid_token

  Logs: {demo.data_dir}/token-server.log and app-server.log. Ctrl-C stops both servers.
"""


def main() -> None:
    # SIGTERM ends the demo as Ctrl-C does: both servers are stopped on the way out. And
    # Ctrl-C is Ctrl-C even when the demo was started with SIGINT ignored (a shell's
    # background job), where Python would otherwise leave it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        serve_demo()
    except KeyboardInterrupt:
        # Before the servers were up (setup, start-up) or during their shutdown: what
        # was under way is undone (prepare() keeps nothing of an unfinished first run,
        # the servers are stopped), so there is nothing to show but that it stopped.
        print("\ninterrupted", file=sys.stderr, flush=True)
        raise SystemExit(130) from None


def serve_demo() -> None:
    data_dir = Path(os.environ.get("TOKENSMITH_DATA", "var")).resolve()
    issuer = f"http://127.0.0.1:{TOKEN_PORT}"
    app_url = f"http://127.0.0.1:{APP_PORT}"
    fresh = not (data_dir / CREDENTIALS_FILE).exists()
    print(("initialising " if fresh else "reusing ") + str(data_dir), flush=True)
    demo = prepare(data_dir, issuer, app_url)
    with running(demo, TOKEN_PORT, APP_PORT):
        # The print is inside the try: a Ctrl-C sent the moment the walk-through shows
        # lands while print() returns, and is the same "stop both servers" as later.
        try:
            print(walkthrough(demo, fresh), flush=True)
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nstopping both servers", flush=True)


if __name__ == "__main__":
    main()
