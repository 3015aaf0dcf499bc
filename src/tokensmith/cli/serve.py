"""``tokensmith serve``: the token server on uvicorn.

Before uvicorn starts, the services are opened once (migration, master key, key ring):
a bad key file or an unreachable database is reported as ``error: code: message`` with
exit 1, not as a traceback from inside the ASGI lifespan.

With ``--workers`` > 1 uvicorn needs an import string, so each worker builds its app
with ``worker_app`` (factory mode) from the same environment. ``--config`` reaches the
workers as ``TOKENSMITH_CONFIG`` and ``--workers`` as ``TOKENSMITH_WORKERS`` (the
``auto`` throttle store keeps its counters in the database when there are several);
``--host`` and ``--port`` concern only uvicorn, so they need not reach the app.
uvicorn's access log is always off: the app writes its own, in batches
(``tokensmith.middleware.access_log``), through the logger ``log_config`` sets up.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from tokensmith.server.settings import CONFIG_ENV_VAR, Settings, env_name
from tokensmith.server.settings_checks import is_local_host

from ._context import config_option, load, open_services, run_async

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = [
    "HTTP_PROTOCOL",
    "WORKER_APP",
    "issuer_port_warning",
    "log_config",
    "serve",
    "worker_app",
]

#: What uvicorn imports in each worker process when there are several.
WORKER_APP = "tokensmith.cli.serve:worker_app"
# An import string, not the class: the CLI starts without importing uvicorn, and the
# configuration of several workers is pickled.
HTTP_PROTOCOL = "tokensmith.server.http_protocol:CoalescingHttpToolsProtocol"


def worker_app() -> Starlette:
    """The app of one uvicorn worker: settings from the environment, as in the parent."""
    from tokensmith.server.app import create_app

    return create_app(load(None))


def issuer_port_warning(issuer: str, port: int) -> str | None:
    """A warning when a local issuer names another port than the one served.

    ``serve --port 8010`` with the default issuer publishes discovery and tokens that
    point at port 8000, where nothing (or another server) answers. A non-local issuer
    is left alone: behind a reverse proxy its port is the proxy's.
    """
    parts = urlsplit(issuer)
    # serve never speaks TLS: an https issuer is a proxy's, on this host or not.
    if parts.scheme != "http" or not is_local_host(parts.hostname or ""):
        return None
    named = parts.port or 80
    if named == port:
        return None
    return (
        f"warning: the issuer {issuer} names port {named}, but serve listens on {port}: "
        f"discovery and tokens point at port {named}; set {env_name('issuer')} to "
        f"the URL clients reach"
    )


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging setup plus the app's batched access log, at the server's level."""
    from tokensmith.middleware.access_log import uvicorn_log_config  # not for --help

    return uvicorn_log_config(settings.log_level)


@click.command()
@config_option
@click.option("--host", default=None, help="Address to bind (default: TOKENSMITH_HOST).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None, help="Port (default: TOKENSMITH_PORT)."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes (default: TOKENSMITH_WORKERS).",
)
def serve(
    config_path: Path | None, host: str | None, port: int | None, workers: int | None
) -> None:
    """Run the token server until SIGINT or SIGTERM (then finish requests and stop)."""
    import uvicorn

    from tokensmith.server.app import create_app

    settings = load(config_path)
    host = host if host is not None else settings.host
    port = port if port is not None else settings.port
    workers = workers if workers is not None else settings.workers

    async def preflight() -> None:
        # A first start sets up the data directory, as `tokensmith init` would.
        async with open_services(settings, create=True, maintain_keys=True):
            pass

    run_async(preflight)
    click.echo(f"tokensmith: serving {settings.issuer} on {host}:{port}", err=True)
    # Behind listed proxies the issuer names the proxy's port, not ours.
    warning = None if settings.trusted_proxies else issuer_port_warning(settings.issuer, port)
    if warning is not None:
        click.echo(warning, err=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again so
    # the default action runs; a no-op handler makes that a clean exit 0 instead of a
    # KeyboardInterrupt traceback or death by signal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _sig, _frame: None)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": settings.log_level,
        "log_config": log_config(settings),
        "access_log": False,  # the app's own (create_app), when settings.access_log
        # httptools, a response's head and body sent in one write, with limits (http_protocol.py)
        "http": HTTP_PROTOCOL,
        "loop": "asyncio",  # uvloop raised p99 at saturation (BENCHMARKS.md, issue 5)
        # uvicorn's default believes X-Forwarded-For from 127.0.0.1, so a client of a
        # TLS terminator on this host would choose the address the throttle counts.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or None,
    }
    if workers > 1:
        if config_path is not None:
            os.environ[CONFIG_ENV_VAR] = str(config_path.resolve())
        # The workers' settings must see how many they are, flag or not: with a
        # per-process throttle, N workers would give an attacker N times the allowance.
        os.environ[env_name("workers")] = str(workers)
        uvicorn.run(WORKER_APP, factory=True, workers=workers, **common)
    else:
        uvicorn.run(create_app(settings), **common)
