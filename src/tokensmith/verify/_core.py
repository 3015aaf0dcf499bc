"""What ``Verifier`` and ``AsyncVerifier`` share: policy, key installation, the caches.

The two classes differ only where I/O happens (fetching keys, polling the feed); the
rules live here. The policy is built once per algorithm list (in practice once), never
per call. Installing a different key set empties the verified-token cache, so a key
removed from the JWKS stops verifying cached tokens at the same moment as new ones.
"""

from __future__ import annotations

import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Generic, Self, TypedDict, TypeVar

from tokensmith.clock import Clock, SystemClock
from tokensmith.jose import JWK, JWKSet, JWTPolicy, verify_jwt

from ._jwks_state import JWKSCachePolicy
from ._key_sources import KeySource, keys_algorithms, load_jwks, load_pem
from ._revocation_feed import RevocationFeed, RevocationState
from ._token_cache import VerifiedTokenCache
from .claims import AccessClaims, access_claims
from .config import VerifierConfig
from .denylist import Denylist

__all__ = ["MIN_SECRET_BYTES", "RemoteJWKSOptions", "VerifierCore"]

#: RFC 7518 3.2: an HS256 key has at least as many bytes as the hash.
MIN_SECRET_BYTES = 32

TransportT = TypeVar("TransportT")
#: What a verification reads once: the cache generation, the keys and the policy.
Installed = tuple[int, JWK | JWKSet, JWTPolicy]


class RemoteJWKSOptions(TypedDict):
    """What a verifier gives its remote key set, besides the client."""

    jwks_uri: str | None
    issuer: str | None
    policy: JWKSCachePolicy
    clock: Clock
    allow_insecure_http: bool


class VerifierCore(ABC, Generic[TransportT]):
    """The state and rules of a verifier; subclasses add the sync or async I/O."""

    config: VerifierConfig
    _clock: Clock
    _now: Callable[[], float]
    _leeway: float
    _denylist: Denylist
    _tokens: VerifiedTokenCache
    _cached: Callable[[str | bytes], AccessClaims | None]
    #: A set (looked up by kid), or the one key of ``from_pem``/``from_secret``.
    _keys: JWK | JWKSet | None
    _policy: JWTPolicy | None
    _algorithms: frozenset[str] | None
    _keys_valid_until: float
    #: The revocation feed to poll, None without client credentials.
    _feed: RevocationFeed | None

    def __init__(
        self,
        config: VerifierConfig,
        *,
        clock: Clock | None = None,
        transport: TransportT | None = None,
    ) -> None:
        """Remote keys: from ``config.jwks_uri``, or by discovery from ``config.issuer``.

        ``transport`` replaces the network (tests pass ``httpx.MockTransport``).
        """
        self._setup(config, clock, transport, None)

    def _setup(
        self,
        config: VerifierConfig,
        clock: Clock | None,
        transport: TransportT | None,
        static: tuple[JWK | JWKSet, frozenset[str]] | None,
    ) -> None:
        """Build the verifier: remote keys when ``static`` is None, else those keys."""
        if not isinstance(config, VerifierConfig):
            raise TypeError("config must be a VerifierConfig")
        self.config = config
        self._clock = clock if clock is not None else SystemClock()
        # The system clock is read directly: one call fewer on every verification.
        self._now = time.time if type(self._clock) is SystemClock else self._clock.now
        self._leeway = config.leeway
        self._denylist = Denylist(leeway=config.leeway)
        self._tokens = VerifiedTokenCache(config.token_cache_size)
        self._cached = self._tokens.get
        self._keys = None
        self._policy = None
        self._algorithms = None
        self._keys_valid_until = -math.inf
        remote = static is None
        if remote and config.jwks_uri is None:
            config.check_issuer_url()
        self._feed = self._revocation_feed()
        self._connect(transport, remote=remote)
        if static is not None:
            self._install_static(static)

    @abstractmethod
    def _connect(self, transport: TransportT | None, *, remote: bool) -> None:
        """Open the client when one is needed, the remote key set and the feed's poller.

        ``remote``: the keys come from the issuer (see ``_remote_jwks_options``); the
        poller is built when ``_feed`` is set. Nothing is fetched here.
        """

    def _remote_jwks_options(self) -> RemoteJWKSOptions:
        config = self.config
        return RemoteJWKSOptions(
            jwks_uri=config.jwks_uri,
            issuer=None if config.jwks_uri else config.issuer,
            policy=config.jwks_cache,
            clock=self._clock,
            allow_insecure_http=config.allow_insecure_http,
        )

    # -- offline constructors -------------------------------------------------------

    @classmethod
    def _offline(
        cls,
        config: VerifierConfig,
        keys: JWK | JWKSet,
        algorithms: frozenset[str],
        clock: Clock | None,
        transport: TransportT | None,
    ) -> Self:
        if config.jwks_uri is not None:
            raise ValueError("a static key set and a jwks_uri exclude each other")
        verifier = cls.__new__(cls)
        verifier._setup(config, clock, transport, (keys, algorithms))
        return verifier

    @classmethod
    def from_jwks(
        cls,
        keys: KeySource,
        config: VerifierConfig,
        *,
        clock: Clock | None = None,
        transport: TransportT | None = None,
    ) -> Self:
        """Verify with a fixed key set (a ``JWKSet``, JWK Set JSON, or its file); no fetching.

        ``transport`` serves only the revocation feed, polled when the config has
        client credentials.
        """
        jwks = load_jwks(keys)
        return cls._offline(config, jwks, keys_algorithms(config, jwks), clock, transport)

    @classmethod
    def from_pem(
        cls,
        pem: str | bytes | os.PathLike[str],
        config: VerifierConfig,
        *,
        clock: Clock | None = None,
        transport: TransportT | None = None,
    ) -> Self:
        """Verify with one public key from PEM text or a PEM file (a private key's public half).

        The one key verifies whatever kid a token names, as the core does for a single key.
        """
        key = load_pem(pem)
        return cls._offline(config, key, keys_algorithms(config, key), clock, transport)

    @classmethod
    def from_secret(
        cls,
        secret: bytes,
        config: VerifierConfig,
        *,
        clock: Clock | None = None,
        transport: TransportT | None = None,
    ) -> Self:
        """HS256 with a shared secret of at least 32 bytes: for a single-party setup only.

        Whoever can verify can also sign, so only the issuer itself should hold it. The
        one key verifies whatever kid a token names (the token server writes ``hs256``).
        """
        if not isinstance(secret, bytes):
            raise TypeError("secret must be bytes")
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"an HS256 secret must be at least {MIN_SECRET_BYTES} bytes")
        if config.algorithms is not None:
            raise ValueError("from_secret verifies HS256 only: leave config.algorithms unset")
        key = JWK.from_secret(secret, alg="HS256")
        return cls._offline(config, key, frozenset({"HS256"}), clock, transport)

    # -- shared rules ---------------------------------------------------------------

    @property
    def denylist(self) -> Denylist:
        return self._denylist

    @property
    def keys(self) -> JWK | JWKSet | None:
        """What verifies now: a set, or the one offline key; None before the first fetch."""
        return self._keys

    @property
    def revocation_state(self) -> RevocationState | None:
        """How the denylist stands against the feed; None when the feed is not polled."""
        return self._feed.state if self._feed is not None else None

    def _install(self, keys: JWK | JWKSet, valid_until: float, algorithms: frozenset[str]) -> None:
        if algorithms != self._algorithms:
            self._policy = JWTPolicy(
                algorithms=algorithms,
                issuer=self.config.issuer,
                audience=self.config.audience,
                typ=self.config.typ,
                required_claims=self.config.required_claims,
                leeway=self.config.leeway,
                max_token_size=self.config.max_token_size,
                clock=self._clock,
            )
            self._algorithms = algorithms
        if keys is not self._keys:
            # Keys first, then the reset: a verification reads the generation before
            # the keys, so one that used the old set can never store its result.
            self._keys = keys
            self._tokens.reset()
        self._keys_valid_until = valid_until

    def _revocation_feed(self) -> RevocationFeed | None:
        """The feed to poll, when the config has a confidential client's credentials."""
        config = self.config
        if config.client_id is None or config.client_secret is None:
            return None
        return RevocationFeed(
            config.feed_uri(),
            config.client_id,
            config.client_secret,
            self._denylist,
            self._clock,
            timeout=config.jwks_cache.timeout,
        )

    def _install_static(self, static: tuple[JWK | JWKSet, frozenset[str]]) -> None:
        keys, algorithms = static
        self._install(keys, math.inf, algorithms)

    def _installed(self) -> Installed:
        """The generation, keys and policy to verify with, read in that order (``_install``)."""
        generation = self._tokens.generation
        keys, policy = self._keys, self._policy
        assert keys is not None and policy is not None
        return generation, keys, policy

    def _verify_with(self, token: str | bytes, installed: Installed) -> AccessClaims:
        """Verify with ``installed`` and cache the result; ``KeyNotFound`` if no kid fits.

        Synchronous in both verifiers: only an unknown kid needs I/O (a refetch), and
        a new token should not pay for a second coroutine.
        """
        generation, keys, policy = installed
        claims = access_claims(verify_jwt(token, keys, policy))
        self._tokens.put(token, claims, generation)
        return claims
