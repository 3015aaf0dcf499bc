"""The key ring's background jobs: the scheduled maintenance, and following other writers.

``run_maintenance`` applies the rotation plan every minute (key changes are due days
apart). ``run_reload`` reads the ring's rows every second, so a change another process
made (``tokensmith keys revoke`` from the CLI, another worker's admin API call) reaches
this one at once: a revoked key stops signing and leaves the JWKS within a second, not
at the next maintenance pass. A reload is one small read; it re-renders only on change.
"""

from __future__ import annotations

import logging

import anyio

from tokensmith.store import Database

from .keyring import KeyRing

__all__ = ["run_maintenance", "run_reload"]

# The ring's own logger: one name for everything the key ring logs.
logger = logging.getLogger("tokensmith.server.services.keyring")


async def run_maintenance(
    keyring: KeyRing, db: Database, interval: float, stop_event: anyio.Event
) -> None:
    """Call ``keyring.maintain`` every ``interval`` seconds until ``stop_event`` is set.

    A failing pass (database down) is logged and retried at the next interval: the
    loop outlives it.
    """
    if interval < 0:
        raise ValueError("interval must not be negative")
    while not stop_event.is_set():
        try:
            # Shielded: a pass cancelled mid-transaction leaves SQLAlchemy an unreturned
            # connection whose close is scheduled as an orphan task on a closing loop.
            with anyio.CancelScope(shield=True):
                await keyring.maintain(db)
        except Exception:
            logger.exception("key ring maintenance failed; retrying in %s s", interval)
        with anyio.move_on_after(interval):
            await stop_event.wait()


async def run_reload(
    keyring: KeyRing, db: Database, interval: float, stop_event: anyio.Event
) -> None:
    """Call ``keyring.reload`` every ``interval`` seconds until ``stop_event`` is set.

    A failure is logged once, and its end once: a database that is down for an hour
    must not write a line every second.
    """
    if interval <= 0:
        raise ValueError("interval must be positive")
    failing = False
    while not stop_event.is_set():
        with anyio.move_on_after(interval):
            await stop_event.wait()
        if stop_event.is_set():
            return
        try:
            with anyio.CancelScope(shield=True):
                await keyring.reload(db)
        except Exception:
            if not failing:
                logger.exception("reading the key ring failed; serving the last one read")
            failing = True
        else:
            if failing:
                logger.info("reading the key ring works again")
            failing = False
