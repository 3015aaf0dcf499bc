"""The token server's wiring: ``build_services`` (shared with the CLI) and the ASGI app.

``build_services`` opens the database, migrates it, loads the master key and the key
ring, and builds every service once; the CLI's commands and the server use the same
function, so they can never be wired differently. ``create_app`` is the Starlette app
(chosen over FastAPI: the routes are thin, and PEERS.md measured ~44 us per request for
a trivial FastAPI dependency) whose lifespan runs ``build_services`` and the background
jobs: key ring maintenance every minute, a re-read of the key ring every second (a key
revoked by the CLI or another worker stops signing here at once), pruning every
``prune_interval`` and the
``AuditWriter``'s drain of batched ``token_issued`` rows (flushed when the lifespan ends).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import anyio
import argon2
from starlette.applications import Starlette
from starlette.middleware import Middleware

from tokensmith.clock import Clock, SystemClock
from tokensmith.server.services import (
    AuditLog,
    AuditWriter,
    ClientCache,
    ClientService,
    DatabaseThrottleStore,
    KeyRing,
    MemoryThrottleStore,
    PasswordHasher,
    Throttle,
    ThrottlePolicy,
    ThrottleStore,
    TokenService,
    UserService,
    derive_refresh_secret,
    load_or_create_master_key,
    run_maintenance,
    run_reload,
    throttle_auditor,
)
from tokensmith.server.settings import Settings
from tokensmith.store import (
    Database,
    KeySettings,
    KeySettingsRepository,
    Repositories,
    prune,
    upgrade,
)

from .hot_routes import HotRoutes
from .http_errors import CatchAllMiddleware, exception_handlers
from .proxy_hint import ProxyHint
from .routes import routes
from .routes.oauth import token

__all__ = [
    "KEY_RELOAD_INTERVAL",
    "MAINTENANCE_INTERVAL",
    "ServerContext",
    "build_services",
    "create_app",
    "key_settings",
    "throttle_store",
]

logger = logging.getLogger("tokensmith.server")

#: Seconds between key ring passes (rotations fall days apart).
MAINTENANCE_INTERVAL = 60.0
#: Seconds between reads of the key ring: how soon another process's change (a revoked
#: key above all) reaches this one. One small read when nothing changed.
KEY_RELOAD_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class ServerContext:
    """Everything a request or a CLI command needs, built once by ``build_services``."""

    settings: Settings
    clock: Clock
    db: Database
    keyring: KeyRing
    passwords: PasswordHasher
    user_throttle: Throttle
    client_throttle: Throttle
    clients: ClientService
    tokens: TokenService
    users: UserService
    audit: AuditLog
    audit_writer: AuditWriter

    def __repr__(self) -> str:
        return f"ServerContext(issuer={self.settings.issuer!r}, db={self.db!r})"


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        free_failures=settings.login_free_failures,
        max_delay=float(settings.login_max_delay),
        lock_threshold=settings.login_lock_threshold,
        lock_seconds=float(settings.login_lock_seconds),
        ip_threshold=settings.login_ip_threshold,
        ip_lock_seconds=float(settings.login_lock_seconds),
        window=float(settings.login_window_seconds),
    )


async def _new_deployment(db: Database) -> bool:
    """No server has started here (no key settings recorded) and nothing is in use: no
    key (a deployment from before key settings were recorded has some) and no client
    (an HS256-only deployment has no key, but clients)."""
    async with db.read() as session:
        repos = Repositories(session)
        if await KeySettingsRepository(session).stored() is not None:
            return False
        return not await repos.keys.list_records() and not await repos.clients.any_registered()


def key_settings(settings: Settings) -> KeySettings:
    """What the key ring is planned from, as ``KeySettingsRepository`` records it."""
    return KeySettings.of(
        settings.signing_algorithms, settings.key_prepublish, settings.rotation_period
    )


def throttle_store(settings: Settings, db: Database) -> ThrottleStore:
    """The counters of the throttles, as ``throttle_store`` (``auto`` decided) says."""
    if settings.resolved_throttle_store() == "database":
        return DatabaseThrottleStore(db)
    return MemoryThrottleStore()


@asynccontextmanager
async def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    password_parameters: argon2.Parameters | None = None,
    maintain_keys: bool | Literal["first_start"] = True,
) -> AsyncIterator[ServerContext]:
    """Open, migrate and wire everything; the database is closed on exit.

    ``maintain_keys``: ``settings`` are the deployment's (the server), so the key ring
    is maintained once (a fresh ring gets its first keys, due activations, retirements
    and deletions are made), and the token retention and the key settings
    (``KeySettingsRepository``) are recorded. False (the CLI's commands, whose settings
    may name other algorithms or lifetimes than the server's): the ring and the
    retention are only read, and opening changes no key. ``"first_start"``
    (``tokensmith init``): as True for a new deployment (no key settings recorded, no
    key and no client), as False for one in use, whose ring is the server's.

    ``password_parameters`` is for tests (cheap argon2); production uses the hasher's
    RFC 9106 defaults.
    """
    clock = clock or SystemClock()
    master = load_or_create_master_key(settings)
    db = Database.open(settings.resolved_database_url())
    # Batches token_issued rows while create_app's lifespan runs it; otherwise (the CLI)
    # each row is written at once. Flushed below before the database closes.
    audit_writer = AuditWriter(db)
    try:
        await upgrade(db)
        if maintain_keys == "first_start":
            maintain_keys = await _new_deployment(db)
        keyring = await KeyRing.load(db, master, settings, clock, record_retention=maintain_keys)
        if maintain_keys:
            await keyring.maintain(db)  # a fresh ring gets its first key before any request
            async with db.transaction() as session:
                await KeySettingsRepository(session).record(key_settings(settings))
        passwords = PasswordHasher(password_parameters)
        policy = throttle_policy(settings)
        auditor = throttle_auditor(db)
        # One store: wrong passwords and wrong client secrets from an address fill one
        # address counter (the pair counters' keys differ by kind). In the database, it is
        # also one store for every worker and instance.
        counters = throttle_store(settings, db)
        user_throttle = Throttle(counters, policy, clock=clock, on_throttled=auditor, kind="user")
        client_throttle = Throttle(
            counters,
            policy,
            clock=clock,
            on_throttled=auditor,
            kind="client",
            count_in_flight=False,
        )
        clients = ClientService(
            db, client_throttle, clock=clock, cache=ClientCache(settings.client_cache_ttl)
        )
        tokens = TokenService(
            db,
            keyring,
            passwords,
            user_throttle,
            settings,
            refresh_secret=derive_refresh_secret(master),
            clock=clock,
            audit=audit_writer,
        )
        yield ServerContext(
            settings=settings,
            clock=clock,
            db=db,
            keyring=keyring,
            passwords=passwords,
            user_throttle=user_throttle,
            client_throttle=client_throttle,
            clients=clients,
            tokens=tokens,
            users=UserService(db, passwords, tokens, clock=clock),
            audit=AuditLog(db, audit_writer),
            audit_writer=audit_writer,
        )
    finally:
        try:
            await audit_writer.aclose()
        finally:
            await db.dispose()


async def prune_once(ctx: ServerContext) -> None:
    """Delete expired rows and forget idle throttle counters."""
    settings = ctx.settings
    now = int(ctx.clock.now())
    policy = ctx.keyring.policy
    async with ctx.db.transaction() as session:
        await prune(
            session,
            now,
            audit_retention=settings.audit_retention,
            # No access token outlives access_token_lifetime (the token service caps
            # per-client lifetimes at it), so older not-before times can go; but not
            # while tokens issued under a longer former lifetime may live.
            token_lifetime=policy.retention if now >= policy.keep_until else None,
            leeway=settings.leeway,
            # Counters whose expiry has come; the database throttle store's own prune
            # below deletes the same rows (and the memory store's are in memory).
            login_failures=True,
        )
    await ctx.user_throttle.prune()
    await ctx.client_throttle.prune()


async def run_pruning(ctx: ServerContext, interval: float, stop: anyio.Event) -> None:
    """``prune_once`` every ``interval`` seconds until ``stop``; a failed pass is retried."""
    while not stop.is_set():
        with anyio.move_on_after(interval):
            await stop.wait()
        if stop.is_set():
            return
        try:
            with anyio.CancelScope(shield=True):  # never cancel a transaction half-way
                await prune_once(ctx)
        except Exception:
            logger.exception("pruning failed; retrying in %s s", interval)


def create_app(
    settings: Settings,
    *,
    clock: Clock | None = None,
    password_parameters: argon2.Parameters | None = None,
) -> Starlette:
    """The ASGI app; its lifespan builds the services and runs the background jobs."""
    # Imported here: the middleware package brings the verifier SDK and httpx, which the
    # CLI's other commands (they share build_services) need not load.
    from tokensmith.middleware.access_log import AccessLog, AccessLogMiddleware

    access_log = AccessLog() if settings.access_log else None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with build_services(
            settings, clock=clock, password_parameters=password_parameters
        ) as ctx:
            app.state.ctx = ctx
            stop = anyio.Event()
            async with anyio.create_task_group() as group:
                group.start_soon(run_maintenance, ctx.keyring, ctx.db, MAINTENANCE_INTERVAL, stop)
                group.start_soon(run_reload, ctx.keyring, ctx.db, KEY_RELOAD_INTERVAL, stop)
                group.start_soon(run_pruning, ctx, float(settings.prune_interval), stop)
                group.start_soon(ctx.audit_writer.run)
                if access_log is not None:
                    group.start_soon(access_log.run, stop)
                try:
                    yield
                finally:
                    # Both jobs wake on ``stop`` and finish the pass they are in; the audit
                    # writer flushes what is queued and returns.
                    stop.set()
                    ctx.audit_writer.stop()

    handlers = exception_handlers(on_throttled=ProxyHint(settings, clock).throttled)
    middleware = [
        Middleware(CatchAllMiddleware),
        # Innermost: the token endpoint skips the router's layers (hot_routes.py).
        Middleware(
            HotRoutes,
            routes={("POST", "/oauth/token"): token},
            error_handlers=handlers,
        ),
    ]
    if access_log is not None:
        # Outside the catch-all, so an answer it makes of a failure is logged as sent.
        middleware.insert(0, Middleware(AccessLogMiddleware, log=access_log))
    app = Starlette(
        routes=routes(settings),
        middleware=middleware,
        exception_handlers=handlers,
        lifespan=lifespan,
    )
    # No 307 from "/oauth/token/" to "/oauth/token": its Location would repeat the query
    # string (where a client may have put a credential) and its body is not JSON. A path
    # with a stray slash is a 404 like any other unknown path.
    app.router.redirect_slashes = False
    return app
