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

from tokensmith.errors import (
    ExpiredToken,
    KeyNotFound,
    KeySetUnavailable,
    NotYetValid,
    RevokedToken,
)
from tokensmith.jose import JWK, JWKSet

from ._core import VerifierCore
from ._key_sources import remote_algorithms
from .claims import AccessClaims
from .jwks_cache import AsyncRemoteJWKS
from .revocations import AsyncRevocationPoller, RevocationState

__all__ = ["AsyncVerifier"]


class AsyncVerifier(VerifierCore[httpx.AsyncBaseTransport]):
    """Verifies access tokens against a remote JWKS, checks them against the denylist."""

    _client: httpx.AsyncClient | None
    _jwks: AsyncRemoteJWKS | None
    _poller: AsyncRevocationPoller | None

    def _connect(self, transport: httpx.AsyncBaseTransport | None, *, remote: bool) -> None:
        feed = self._feed
        self._client = client = httpx.AsyncClient(transport=transport) if remote or feed else None
        self._jwks = (
            AsyncRemoteJWKS(client=client, **self._remote_jwks_options()) if remote else None
        )
        interval = self.config.revocation_poll_interval
        self._poller = AsyncRevocationPoller(feed, client, interval) if feed and client else None

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
