"""``AsyncVerifier``: access-token verification for asyncio code (ASGI apps).

The same rules as ``Verifier`` (they live in ``_core``); keys are fetched with
``httpx.AsyncClient`` and concurrent verifications that need a fetch await one shared
task. ``start()`` (or ``async with``) loads the keys and runs the revocation poller as
a task; ``aclose()`` cancels it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import httpx

from tokensmith.clock import Clock
from tokensmith.errors import (
    ExpiredToken,
    KeyNotFound,
    KeySetUnavailable,
    NotYetValid,
    RevokedToken,
)
from tokensmith.jose import JWK, JWKSet

from ._core import VerifierCore, remote_algorithms
from .claims import AccessClaims
from .config import VerifierConfig
from .jwks_cache import AsyncRemoteJWKS
from .revocations import AsyncRevocationPoller, RevocationState

__all__ = ["AsyncVerifier"]


class AsyncVerifier(VerifierCore[httpx.AsyncBaseTransport]):
    """Verifies access tokens against a remote JWKS, checks them against the denylist."""

    _client: httpx.AsyncClient | None
    _jwks: AsyncRemoteJWKS | None
    _poller: AsyncRevocationPoller | None

    def __init__(
        self,
        config: VerifierConfig,
        *,
        clock: Clock | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Remote keys: from ``config.jwks_uri``, or by discovery from ``config.issuer``.

        ``transport`` replaces the network (tests pass ``httpx.MockTransport``).
        """
        self._setup(config, clock, transport, None)

    def _setup(
        self,
        config: VerifierConfig,
        clock: Clock | None,
        transport: httpx.AsyncBaseTransport | None,
        static: tuple[JWK | JWKSet, frozenset[str]] | None,
    ) -> None:
        self._setup_core(config, clock)
        remote = static is None
        if remote and config.jwks_uri is None:
            config.check_issuer_url()
        feed = self._revocation_feed()
        self._client = httpx.AsyncClient(transport=transport) if remote or feed else None
        self._jwks = None
        self._poller = None
        if static is not None:
            self._install_static(static)
        else:
            assert self._client is not None
            self._jwks = AsyncRemoteJWKS(
                config.jwks_uri,
                issuer=None if config.jwks_uri else config.issuer,
                policy=config.jwks_cache,
                clock=self._clock,
                client=self._client,
                allow_insecure_http=config.allow_insecure_http,
            )
        if feed is not None:
            assert self._client is not None
            self._poller = AsyncRevocationPoller(
                feed, self._client, config.revocation_poll_interval
            )

    # -- verification -----------------------------------------------------------------

    async def verify(self, token: str | bytes) -> AccessClaims:
        """The token's claims if it is valid and not revoked; otherwise a ``TokenError``.

        ``KeySetUnavailable`` (not a ``TokenError``) when no key set can be had.
        """
        now = self._now()
        if now >= self._keys_valid_until:
            await self._refresh_keys()
        claims = self._cached(token)
        if claims is None:
            installed = self._installed()
            try:
                claims = self._verify_with(token, installed)
            except KeyNotFound as unknown:
                claims = await self._verify_after_unknown_kid(token, installed[1], unknown)
        else:
            # A hit is the very token verified before: only what time changes is checked.
            leeway = self._leeway
            if now >= claims.exp + leeway:
                raise ExpiredToken()
            nbf = claims.nbf
            if nbf is not None and now + leeway < nbf:
                raise NotYetValid()
        denylist = self._denylist
        if (denylist.revoked or denylist.not_before) and denylist.refuses(
            claims.jti, claims.sub, claims.iat
        ):
            raise RevokedToken()
        return claims

    async def _refresh_keys(self) -> None:
        jwks = self._jwks
        if jwks is None:
            return
        keys, valid_until = await jwks.keys()
        self._install(keys, valid_until, remote_algorithms(self.config, jwks.metadata))

    async def _verify_after_unknown_kid(
        self, token: str | bytes, tried: JWK | JWKSet, unknown: KeyNotFound
    ) -> AccessClaims:
        # Asked about ``tried``, not the keys installed now: if another thread or task
        # installed a newer set meanwhile, the cache hands it over without a fetch.
        if self._jwks is None or await self._jwks.keys_after_unknown_kid(tried) is None:
            raise unknown
        # A newer set arrived (a rotation): install it and verify once more.
        await self._refresh_keys()
        return self._verify_with(token, self._installed())

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def jwks(self) -> AsyncRemoteJWKS | None:
        """The remote key set cache (its ``state``, ``reload()``); None with static keys."""
        return self._jwks

    @property
    def revocation_state(self) -> RevocationState | None:
        """How the denylist stands against the feed; None when the feed is not polled."""
        return self._poller.feed.state if self._poller is not None else None

    async def poll_revocations(self) -> RevocationState:
        """Read the revocation feed now, to its end."""
        if self._poller is None:
            raise ValueError("the revocation feed needs client_id and client_secret")
        return await self._poller.poll_once()

    async def start(self) -> None:
        """Load the keys (a failure is logged, not raised) and start polling revocations."""
        if self._jwks is not None and self._keys is None:
            try:
                await self._refresh_keys()
            except KeySetUnavailable:
                pass  # logged by the cache; verification retries after the cooldown
        if self._poller is not None:
            self._poller.start()

    async def aclose(self) -> None:
        if self._poller is not None:
            await self._poller.aclose()
        if self._jwks is not None:
            await self._jwks.aclose()
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
