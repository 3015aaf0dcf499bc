"""Audit rows written in batches, so issuing a token costs no write transaction of its own.

``AuditWriter.record`` checks the row at once (``audit_values``: a bad row fails its
caller, never a batch) and, while ``run()`` is draining, appends it to a bounded queue.
``run()`` writes every queued row in one transaction each ``interval`` (250 ms), or as
soon as ``batch_size`` (2048) rows wait. Nothing is ever dropped:

- the queue full (``max_queued``: the database is slow or down): the row is written by
  its caller in a transaction of its own, as without batching; if that fails, the caller
  fails (the token endpoint answers 503 and hands out no token);
- a batch that fails stays queued and is retried (1 s, doubling up to 30 s), logged;
- ``flush()`` writes what is queued now (the admin audit API calls it before reading, so
  it sees this process's rows); ``aclose()`` stops the drain and flushes, retrying a few
  times, and logs every row it still could not write as an error, one JSON line each.
- no ``run()`` (the CLI, tests that build services without the app's lifespan): every
  row is written at once by its caller.

The trade: a crash of the process (SIGKILL, power loss) loses the rows of at most the
last ``interval`` (and any batch being retried while the database was failing). Only
rows that would otherwise cost a transaction of their own go through here:
``token_issued`` of the client_credentials grant. Rows that belong to a transaction
that writes anyway (a login, a refresh rotation) stay in it.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

import anyio

from tokensmith.store import AuditEvent, Database, Repositories
from tokensmith.store.audit import AuditRow, audit_values

__all__ = ["AuditWriter"]

logger = logging.getLogger("tokensmith.server.audit")


class AuditWriter:
    """A batching writer of audit rows over ``db``; see the module docstring."""

    def __init__(
        self,
        db: Database,
        *,
        # Each batch costs the event loop ~0.5 ms however small it is (four trips to the
        # database thread, each a cross-thread wake-up), and its rows 5-10 us each: at
        # 100 ms / 256 rows the writes took ~12% of a serving process's client_credentials
        # throughput, at 250 ms / 2048 about half that; larger gained nothing measurable.
        interval: float = 0.25,
        batch_size: int = 2048,
        max_queued: int = 10_000,
        retry_delay: float = 1.0,
        max_retry_delay: float = 30.0,
        close_attempts: int = 3,
    ) -> None:
        if interval <= 0 or retry_delay <= 0 or max_retry_delay < retry_delay:
            raise ValueError("interval and retry delays must be positive and ordered")
        if batch_size < 1 or max_queued < batch_size or close_attempts < 1:
            raise ValueError("need 1 <= batch_size <= max_queued and close_attempts >= 1")
        self.db = db
        self.interval = interval
        self.batch_size = batch_size
        self.max_queued = max_queued
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.close_attempts = close_attempts
        self._queue: deque[AuditRow] = deque()
        self._in_flight = 0  # rows taken from the queue by a write not yet committed
        self._lock = anyio.Lock()  # one flush at a time, so a retry keeps rows in order
        self._wake = anyio.Event()  # set when batch_size rows wait, or by stop()
        self._stopped = anyio.Event()
        self._running = False

    def __repr__(self) -> str:
        return f"AuditWriter(pending={self.pending}, running={self._running})"

    @property
    def pending(self) -> int:
        """Rows recorded and not yet committed (queued, or in a write under way)."""
        return len(self._queue) + self._in_flight

    @property
    def running(self) -> bool:
        """True while ``run()`` drains the queue (rows are then batched)."""
        return self._running

    async def record(
        self,
        event: AuditEvent | str,
        *,
        at: int,
        actor: str | None = None,
        subject: str | None = None,
        client_address: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one row (checked now); written at once when not running or when full."""
        row = audit_values(
            event,
            at=at,
            actor=actor,
            subject=subject,
            client_address=client_address,
            detail=detail,
        )
        if not self._running or self.pending >= self.max_queued:
            # Not batching, or the queue is full: the caller writes its own row (and
            # fails if that fails), so none is dropped and memory stays bounded.
            await self._write([row])
            return
        self._queue.append(row)
        if len(self._queue) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> int:
        """Write every row queued before this call; returns how many rows were written.

        On a database failure the rows not written stay queued, in order, and the
        exception propagates.
        """
        async with self._lock:
            # Rows queued before the call and not yet written are all here now (a drain
            # that took some finished under the lock); later rows may wait for the next.
            remaining = len(self._queue)
            written = 0
            while remaining > 0 and self._queue:
                count = min(remaining, len(self._queue), self.max_queued)
                batch = [self._queue.popleft() for _ in range(count)]
                self._in_flight = count
                try:
                    await self._write(batch)
                except BaseException:
                    self._queue.extendleft(reversed(batch))
                    raise
                finally:
                    self._in_flight = 0
                written += count
                remaining -= count
            return written

    async def run(self) -> None:
        """Drain the queue until ``stop()``, then flush what is left (see ``aclose``).

        Start it in a task group (the app's lifespan does); rows are batched only while
        it runs.
        """
        if self._running:
            raise RuntimeError("AuditWriter.run is already running")
        self._running = True
        delay = self.retry_delay
        try:
            while not self._stopped.is_set():
                with anyio.move_on_after(self.interval):
                    await self._wake.wait()
                self._wake = anyio.Event()
                if not self._queue:
                    continue
                try:
                    with anyio.CancelScope(shield=True):  # never abandon a commit half-way
                        await self.flush()
                except Exception:
                    logger.exception(
                        "writing %d audit rows failed; retrying in %.0f s", len(self._queue), delay
                    )
                    with anyio.move_on_after(delay):
                        await self._stopped.wait()
                    delay = min(2 * delay, self.max_retry_delay)
                else:
                    delay = self.retry_delay
        finally:
            self._running = False
        await self._final_flush()

    def stop(self) -> None:
        """Ask ``run()`` to flush and return (it does so at once, not at the next tick)."""
        self._stopped.set()
        self._wake.set()

    async def aclose(self) -> None:
        """Stop batching and write every queued row (``build_services`` calls it on exit)."""
        self.stop()
        self._running = False  # rows recorded from now on are written by their callers
        await self._final_flush()

    async def _final_flush(self) -> None:
        """Flush with a few retries; rows that still fail are logged, never dropped silently."""
        with anyio.CancelScope(shield=True):
            delay = min(self.retry_delay, 1.0)
            for attempt in range(1, self.close_attempts + 1):
                if not self._queue:
                    return
                try:
                    await self.flush()
                    return
                except Exception:
                    logger.exception(
                        "writing %d audit rows at shutdown failed (attempt %d of %d)",
                        len(self._queue),
                        attempt,
                        self.close_attempts,
                    )
                    if attempt < self.close_attempts:
                        await anyio.sleep(delay)
                        delay *= 2
            lost = list(self._queue)
            self._queue.clear()
            logger.error("%d audit rows could not be written; they follow, one a line", len(lost))
            for row in lost:
                # Checked rows: ids, names, addresses and non-secret details only.
                logger.error("unwritten audit row: %s", json.dumps(row.as_params(), sort_keys=True))

    async def _write(self, rows: list[AuditRow]) -> None:
        async with self.db.transaction() as session:
            await Repositories(session).audit.record_many(rows)
