"""What the sync and async remote key set drivers (``jwks_cache.py``) share.

``RemoteJWKSBase`` holds the constructor (validation, the policy, the clock), the
``JWKSCacheMachine``, the endpoint and what discovery found, and every step of a
fetch that is not I/O: starting it, reading the discovery answer, applying the key
set answer and logging what changed. A driver adds its client type, how concurrent
callers share one fetch, and the requests themselves.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from typing import Generic, TypedDict, TypeVar

from tokensmith.clock import Clock, SystemClock
from tokensmith.errors import KeySetUnavailable
from tokensmith.jose import JWKSet

from ._http import Fetched, FetchFailed, check_url
from ._jwks_state import FetchOutcome, JWKSCacheMachine, JWKSCachePolicy, JWKSCacheState
from .discovery import ProviderMetadata, metadata_url, parse_metadata

__all__ = ["RemoteJWKSBase"]

logger = logging.getLogger("tokensmith.verify")


ClientT = TypeVar("ClientT")
TransportT = TypeVar("TransportT")


class _Limits(TypedDict):
    """The bounds of every fetch, as ``get_limited`` and ``get_limited_async`` take them."""

    timeout: float
    max_bytes: int


class RemoteJWKSBase(ABC, Generic[ClientT, TransportT]):
    """What both drivers share: the constructor, the machine, the endpoint, the logging.

    A driver adds its client type, how concurrent callers share a fetch, and the awaits.
    """

    _client: ClientT

    def __init__(
        self,
        jwks_uri: str | None = None,
        *,
        issuer: str | None = None,
        policy: JWKSCachePolicy | None = None,
        clock: Clock | None = None,
        transport: TransportT | None = None,
        client: ClientT | None = None,
        allow_insecure_http: bool = False,
    ) -> None:
        """Fetch from ``jwks_uri``, or find it by discovery from ``issuer``.

        ``client`` is used as given and not closed here; otherwise a client is built
        on ``transport`` (tests pass an ``httpx.MockTransport``) and closed by
        ``close`` (``aclose`` for the async driver).
        """
        if (jwks_uri is None) == (issuer is None):
            raise ValueError("give exactly one of jwks_uri and issuer (for discovery)")
        url = jwks_uri if jwks_uri is not None else issuer
        assert url is not None
        problem = check_url(
            url, what="jwks_uri" if jwks_uri else "issuer", allow_insecure_http=allow_insecure_http
        )
        if problem is not None:
            raise ValueError(problem)
        policy = policy or JWKSCachePolicy()
        self._machine = JWKSCacheMachine(policy)
        self._policy = policy
        self._limits = _Limits(timeout=policy.timeout, max_bytes=policy.max_bytes)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._issuer = issuer
        self._jwks_uri = jwks_uri
        self._allow_insecure_http = allow_insecure_http
        #: The discovery document, once read (None with an explicit jwks_uri).
        self.metadata: ProviderMetadata | None = None
        self._owns_client = client is None
        self._attach(client, transport)

    @abstractmethod
    def _attach(self, client: ClientT | None, transport: TransportT | None) -> None:
        """Set ``_client`` (``client``, or a new one on ``transport``) and the fetch guard."""

    @property
    def state(self) -> JWKSCacheState:
        return self._machine.state(self._clock.now())

    @property
    def policy(self) -> JWKSCachePolicy:
        return self._policy

    def _serving(self) -> tuple[JWKSet, float]:
        """The set to verify with now and until when that holds, or ``KeySetUnavailable``."""
        machine = self._machine
        now = self._clock.now()
        keys = machine.usable_keys(now)
        if keys is None:
            error = machine.state(self._clock.now()).last_error
            if error is None:
                raise KeySetUnavailable()
            raise KeySetUnavailable(f"{KeySetUnavailable.description} Last error: {error}.")
        return keys, machine.recheck_at(now)

    def _newer_than(self, seen: object) -> JWKSet | None:
        """The set to verify with now, if it is not ``seen``."""
        keys = self._machine.usable_keys(self._clock.now())
        return keys if keys is not None and keys is not seen else None

    def _begin_fetch(self) -> tuple[dict[str, str], str | None]:
        """Start a fetch: its request headers, and the discovery URL to read first, if any.

        The discovery document is read on every fetch, not once: the algorithms it
        announces are the verifier's default allow-list, and an issuer may add one.
        """
        headers = self._machine.begin_fetch(self._clock.now())
        return headers, metadata_url(self._issuer) if self._issuer is not None else None

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

    def _received(self, fetched: Fetched) -> FetchOutcome:
        return self._machine.on_response(
            self._clock.now(), fetched.status, fetched.headers, fetched.body
        )

    def _failed(self, exc: FetchFailed) -> FetchOutcome:
        return self._machine.on_failure(self._clock.now(), exc.reason)

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
