"""``Verifier``: access-token verification for threaded code (WSGI, workers, scripts).

Keys come from the issuer's JWKS (found by discovery or given), or from a fixed set
in the offline constructors. ``start()`` loads the keys and starts the revocation
poller thread; ``close()`` stops it. Verification is safe from many threads at once.
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
from .jwks_cache import RemoteJWKS
from .revocations import RevocationPoller, RevocationState

__all__ = ["Verifier"]


class Verifier(VerifierCore[httpx.BaseTransport]):
    """Verifies access tokens against a remote JWKS, checks them against the denylist."""

    _client: httpx.Client | None
    _jwks: RemoteJWKS | None
    _poller: RevocationPoller | None

    def _connect(self, transport: httpx.BaseTransport | None, *, remote: bool) -> None:
        feed = self._feed
        self._client = client = httpx.Client(transport=transport) if remote or feed else None
        self._jwks = RemoteJWKS(client=client, **self._remote_jwks_options()) if remote else None
        interval = self.config.revocation_poll_interval
        self._poller = RevocationPoller(feed, client, interval) if feed and client else None

    # -- verification -----------------------------------------------------------------

    def verify(self, token: str | bytes) -> AccessClaims:
        """The token's claims if it is valid and not revoked; otherwise a ``TokenError``.

        ``KeySetUnavailable`` (not a ``TokenError``) when no key set can be had.
        """
        now = self._now()
        if now >= self._keys_valid_until:
            self._refresh_keys()
        claims = self._cached(token)
        if claims is None:
            installed = self._installed()
            try:
                claims = self._verify_with(token, installed)
            except KeyNotFound as unknown:
                claims = self._verify_after_unknown_kid(token, installed[1], unknown)
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

    def _refresh_keys(self) -> None:
        jwks = self._jwks
        if jwks is None:
            return
        keys, valid_until = jwks.keys()
        self._install(keys, valid_until, remote_algorithms(self.config, jwks.metadata))

    def _verify_after_unknown_kid(
        self, token: str | bytes, tried: JWK | JWKSet, unknown: KeyNotFound
    ) -> AccessClaims:
        # Asked about ``tried``, not the keys installed now: if another thread or task
        # installed a newer set meanwhile, the cache hands it over without a fetch.
        if self._jwks is None or self._jwks.keys_after_unknown_kid(tried) is None:
            raise unknown
        # A newer set arrived (a rotation): install it and verify once more.
        self._refresh_keys()
        return self._verify_with(token, self._installed())

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def jwks(self) -> RemoteJWKS | None:
        """The remote key set cache (its ``state``, ``reload()``); None with static keys."""
        return self._jwks

    def poll_revocations(self) -> RevocationState:
        """Read the revocation feed now, to its end."""
        if self._poller is None:
            raise ValueError("the revocation feed needs client_id and client_secret")
        return self._poller.poll_once()

    def start(self) -> None:
        """Load the keys (a failure is logged, not raised) and start polling revocations."""
        if self._jwks is not None and self._keys is None:
            try:
                self._refresh_keys()
            except KeySetUnavailable:
                pass  # logged by the cache; verification retries after the cooldown
        if self._poller is not None:
            self._poller.start()

    def close(self) -> None:
        if self._poller is not None:
            self._poller.stop()
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
