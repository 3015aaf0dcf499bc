"""The remote key set: thin sync and async drivers around ``JWKSCacheMachine``.

The machine decides; a driver runs the HTTP request it asks for and reports the
result. Concurrent callers share one fetch: the sync driver holds a lock and checks
again once it has it, the async driver keeps one in-flight task that every caller
awaits. While a usable stale set exists, only the caller that starts a refresh waits
for it; the others keep verifying with the stale set.
"""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx

from tokensmith.clock import Clock, SystemClock
from tokensmith.errors import KeySetUnavailable
from tokensmith.jose import JWKSet

from ._http import Fetched, FetchFailed, check_url, get_limited, get_limited_async
from ._jwks_state import FetchOutcome, JWKSCacheMachine, JWKSCachePolicy, JWKSCacheState
from .discovery import ProviderMetadata, metadata_url, parse_metadata

__all__ = ["AsyncRemoteJWKS", "RemoteJWKS"]

logger = logging.getLogger("tokensmith.verify")


class _RemoteJWKSBase:
    """What both drivers share: the machine, the endpoint, the clock and the logging."""

    def __init__(
        self,
        jwks_uri: str | None,
        issuer: str | None,
        policy: JWKSCachePolicy,
        clock: Clock | None,
        allow_insecure_http: bool,
    ) -> None:
        if (jwks_uri is None) == (issuer is None):
            raise ValueError("give exactly one of jwks_uri and issuer (for discovery)")
        url = jwks_uri if jwks_uri is not None else issuer
        assert url is not None
        problem = check_url(
            url, what="jwks_uri" if jwks_uri else "issuer", allow_insecure_http=allow_insecure_http
        )
        if problem is not None:
            raise ValueError(problem)
        self._machine = JWKSCacheMachine(policy)
        self._policy = policy
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._issuer = issuer
        self._jwks_uri = jwks_uri
        self._allow_insecure_http = allow_insecure_http
        #: The discovery document, once read (None with an explicit jwks_uri).
        self.metadata: ProviderMetadata | None = None

    @property
    def state(self) -> JWKSCacheState:
        return self._machine.state(self._clock.now())

    @property
    def policy(self) -> JWKSCachePolicy:
        return self._policy

    def _unavailable(self) -> KeySetUnavailable:
        error = self._machine.state(self._clock.now()).last_error
        if error is None:
            return KeySetUnavailable()
        return KeySetUnavailable(f"{KeySetUnavailable.description} Last error: {error}.")

    def _discovered(self, fetched: Fetched) -> str:
        if fetched.status != 200:
            raise FetchFailed(f"discovery: HTTP {fetched.status}")
        assert self._issuer is not None
        self.metadata = parse_metadata(
            self._issuer, fetched.body, allow_insecure_http=self._allow_insecure_http
        )
        self._jwks_uri = self.metadata.jwks_uri
        return self._jwks_uri

    def _rediscovery_failed(self, exc: FetchFailed) -> str:
        """The key set URL when discovery fails: the one found before, or the failure."""
        if self._jwks_uri is None:
            raise exc
        logger.warning(
            "discovery at %s failed: %s; the last document stands", self._issuer, exc.reason
        )
        return self._jwks_uri

    def _report(self, outcome: FetchOutcome) -> None:
        where = self._jwks_uri or self._issuer
        if outcome.dropped_private:
            # Once per published set: an unchanged body is not parsed again.
            logger.warning(
                "key set from %s publishes private key material (kid %s); "
                "only the public halves are used",
                where,
                ", ".join(repr(kid) for kid in outcome.dropped_private),
            )
        if outcome.first_failure:
            serving = self._machine.usable_keys(self._clock.now()) is not None
            logger.warning(
                "key set fetch from %s failed: %s; %s",
                where,
                outcome.error,
                "serving the last good key set" if serving else "no key set to serve",
            )
        elif outcome.recovered:
            logger.info("key set fetch from %s succeeded again", where)


class RemoteJWKS(_RemoteJWKSBase):
    """A remote JWKS for threaded code, over ``httpx.Client``."""

    def __init__(
        self,
        jwks_uri: str | None = None,
        *,
        issuer: str | None = None,
        policy: JWKSCachePolicy | None = None,
        clock: Clock | None = None,
        transport: httpx.BaseTransport | None = None,
        client: httpx.Client | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        """Fetch from ``jwks_uri``, or find it by discovery from ``issuer``.

        ``client`` is used as given and not closed here; otherwise a client is built
        on ``transport`` (tests pass an ``httpx.MockTransport``) and closed by ``close``.
        """
        super().__init__(jwks_uri, issuer, policy or JWKSCachePolicy(), clock, allow_insecure_http)
        self._owns_client = client is None
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
        now = self._clock.now()
        keys = machine.usable_keys(now)
        if keys is None:
            raise self._unavailable()
        return keys, machine.recheck_at(now)

    def keys_after_unknown_kid(self, seen: object) -> JWKSet | None:
        """A newer set than ``seen`` after a kid miss, fetching at most once per cooldown."""
        machine = self._machine
        with self._lock:  # re-check under the lock: another thread may have fetched
            if machine.keys is seen and machine.may_fetch(self._clock.now()):
                self._fetch()
            keys = machine.usable_keys(self._clock.now())
        return keys if keys is not None and keys is not seen else None

    def reload(self) -> JWKSCacheState:
        """Fetch now, whatever the freshness and the cooldown; failures are in the state."""
        with self._lock:
            self._fetch()
        return self.state

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def _fetch(self) -> None:
        machine = self._machine
        headers = machine.begin_fetch(self._clock.now())
        policy = self._policy
        try:
            url = self._jwks_uri
            if self._issuer is not None:
                # Read on every fetch, not once: the algorithms it announces are the
                # verifier's default allow-list, and an issuer may add one.
                try:
                    url = self._discovered(
                        get_limited(
                            self._client,
                            metadata_url(self._issuer),
                            timeout=policy.timeout,
                            max_bytes=policy.max_bytes,
                        )
                    )
                except FetchFailed as exc:
                    url = self._rediscovery_failed(exc)
            assert url is not None  # no issuer: the jwks_uri was given
            fetched = get_limited(
                self._client,
                url,
                headers=headers,
                timeout=policy.timeout,
                max_bytes=policy.max_bytes,
            )
        except FetchFailed as exc:
            outcome = machine.on_failure(self._clock.now(), exc.reason)
        else:
            outcome = machine.on_response(
                self._clock.now(), fetched.status, fetched.headers, fetched.body
            )
        self._report(outcome)


class AsyncRemoteJWKS(_RemoteJWKSBase):
    """A remote JWKS for asyncio code, over ``httpx.AsyncClient``."""

    def __init__(
        self,
        jwks_uri: str | None = None,
        *,
        issuer: str | None = None,
        policy: JWKSCachePolicy | None = None,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        client: httpx.AsyncClient | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        """As ``RemoteJWKS``, with an ``httpx.AsyncClient`` and an async transport."""
        super().__init__(jwks_uri, issuer, policy or JWKSCachePolicy(), clock, allow_insecure_http)
        self._owns_client = client is None
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
        now = self._clock.now()
        keys = machine.usable_keys(now)
        if keys is None:
            raise self._unavailable()
        return keys, machine.recheck_at(now)

    async def keys_after_unknown_kid(self, seen: object) -> JWKSet | None:
        """As ``RemoteJWKS.keys_after_unknown_kid``; misses during a fetch await it."""
        machine = self._machine
        if machine.keys is seen and (
            self._inflight is not None or machine.may_fetch(self._clock.now())
        ):
            await self._shared_fetch()
        keys = machine.usable_keys(self._clock.now())
        return keys if keys is not None and keys is not seen else None

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
        machine = self._machine
        headers = machine.begin_fetch(self._clock.now())
        policy = self._policy
        try:
            url = self._jwks_uri
            if self._issuer is not None:
                # Read on every fetch, not once: the algorithms it announces are the
                # verifier's default allow-list, and an issuer may add one.
                try:
                    url = self._discovered(
                        await get_limited_async(
                            self._client,
                            metadata_url(self._issuer),
                            timeout=policy.timeout,
                            max_bytes=policy.max_bytes,
                        )
                    )
                except FetchFailed as exc:
                    url = self._rediscovery_failed(exc)
            assert url is not None  # no issuer: the jwks_uri was given
            fetched = await get_limited_async(
                self._client,
                url,
                headers=headers,
                timeout=policy.timeout,
                max_bytes=policy.max_bytes,
            )
        except FetchFailed as exc:
            outcome = machine.on_failure(self._clock.now(), exc.reason)
        else:
            outcome = machine.on_response(
                self._clock.now(), fetched.status, fetched.headers, fetched.body
            )
        finally:
            self._inflight = None
        self._report(outcome)
