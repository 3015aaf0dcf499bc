"""The remote key set: thin sync and async drivers around ``JWKSCacheMachine``.

The machine decides; a driver runs the HTTP request it asks for and reports the
result. The rest that is not I/O (the constructor, discovery, applying and logging a
fetch) is ``RemoteJWKSBase``, in ``_remote_jwks_base.py``. Concurrent callers share
one fetch: the sync driver holds a lock and checks again once it has it, the async
driver keeps one in-flight task that every caller awaits. While a usable stale set
exists, only the caller that starts a refresh waits for it; the others keep
verifying with the stale set.
"""

from __future__ import annotations

import asyncio
import threading

import httpx

from tokensmith.jose import JWKSet

from ._http import FetchFailed, get_limited, get_limited_async
from ._jwks_state import JWKSCacheState
from ._remote_jwks_base import RemoteJWKSBase

__all__ = ["AsyncRemoteJWKS", "RemoteJWKS"]


class RemoteJWKS(RemoteJWKSBase[httpx.Client, httpx.BaseTransport]):
    """A remote JWKS for threaded code, over ``httpx.Client``."""

    def _attach(self, client: httpx.Client | None, transport: httpx.BaseTransport | None) -> None:
        self._client = client if client is not None else httpx.Client(transport=transport)
        self._lock = threading.Lock()

    def keys(self) -> tuple[JWKSet, float]:
        """The key set to verify with, and until when that answer holds.

        Fetches when the set is missing or due (at most once per cooldown); raises
        ``KeySetUnavailable`` when there is no set to serve.
        """
        machine = self._machine
        now = self._clock.now()
        if machine.refresh_due(now):
            if machine.usable_keys(now) is None:
                with self._lock:
                    if machine.refresh_due(self._clock.now()):
                        self._fetch()
            elif self._lock.acquire(blocking=False):
                # One caller refreshes a stale set; the others do not wait for it.
                try:
                    if machine.refresh_due(self._clock.now()):
                        self._fetch()
                finally:
                    self._lock.release()
        elif machine.usable_keys(now) is None:
            with self._lock:  # a fetch may be in flight in another thread: wait for it
                pass
        return self._serving()

    def keys_after_unknown_kid(self, seen: object) -> JWKSet | None:
        """A newer set than ``seen`` after a kid miss, fetching at most once per cooldown."""
        machine = self._machine
        with self._lock:  # re-check under the lock: another thread may have fetched
            if machine.keys is seen and machine.may_fetch(self._clock.now()):
                self._fetch()
            return self._newer_than(seen)

    def reload(self) -> JWKSCacheState:
        """Fetch now, whatever the freshness and the cooldown; failures are in the state."""
        with self._lock:
            self._fetch()
        return self.state

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _fetch(self) -> None:
        headers, discovery = self._begin_fetch()
        try:
            url = self._jwks_uri
            if discovery is not None:
                try:
                    url = self._discovered(get_limited(self._client, discovery, **self._limits))
                except FetchFailed as exc:
                    url = self._rediscovery_failed(exc)
            assert url is not None  # no issuer: the jwks_uri was given
            fetched = get_limited(self._client, url, headers=headers, **self._limits)
        except FetchFailed as exc:
            outcome = self._failed(exc)
        else:
            outcome = self._received(fetched)
        self._report(outcome)


class AsyncRemoteJWKS(RemoteJWKSBase[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """A remote JWKS for asyncio code, over ``httpx.AsyncClient``."""

    def _attach(
        self, client: httpx.AsyncClient | None, transport: httpx.AsyncBaseTransport | None
    ) -> None:
        self._client = client if client is not None else httpx.AsyncClient(transport=transport)
        self._inflight: asyncio.Task[None] | None = None

    async def keys(self) -> tuple[JWKSet, float]:
        """As ``RemoteJWKS.keys``; concurrent callers await one shared fetch."""
        machine = self._machine
        now = self._clock.now()
        if machine.usable_keys(now) is None:
            if self._inflight is not None or machine.refresh_due(now):
                await self._shared_fetch()
        elif self._inflight is None and machine.refresh_due(now):
            await self._shared_fetch()
        return self._serving()

    async def keys_after_unknown_kid(self, seen: object) -> JWKSet | None:
        """As ``RemoteJWKS.keys_after_unknown_kid``; misses during a fetch await it."""
        machine = self._machine
        if machine.keys is seen and (
            self._inflight is not None or machine.may_fetch(self._clock.now())
        ):
            await self._shared_fetch()
        return self._newer_than(seen)

    async def reload(self) -> JWKSCacheState:
        """Fetch now (joining a fetch already in flight); failures are in the state."""
        await self._shared_fetch()
        return self.state

    async def aclose(self) -> None:
        task = self._inflight
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()

    async def _shared_fetch(self) -> None:
        task = self._inflight
        if task is None:
            task = self._inflight = asyncio.ensure_future(self._fetch())
        # A caller cancelled while waiting must not cancel the fetch the others await.
        await asyncio.shield(task)

    async def _fetch(self) -> None:
        headers, discovery = self._begin_fetch()
        try:
            url = self._jwks_uri
            if discovery is not None:
                try:
                    url = self._discovered(
                        await get_limited_async(self._client, discovery, **self._limits)
                    )
                except FetchFailed as exc:
                    url = self._rediscovery_failed(exc)
            assert url is not None  # no issuer: the jwks_uri was given
            fetched = await get_limited_async(self._client, url, headers=headers, **self._limits)
        except FetchFailed as exc:
            outcome = self._failed(exc)
        else:
            outcome = self._received(fetched)
        finally:
            self._inflight = None
        self._report(outcome)
