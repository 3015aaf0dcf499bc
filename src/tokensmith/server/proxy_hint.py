"""A log hint for the operator who put the server behind a reverse proxy and left
``trusted_proxies`` empty.

The throttle then counts the proxy's address for every client behind it, so one
client's failed logins answer 429 to all of them. The ``X-Forwarded-For`` header that
would tell them apart is rightly not believed (any client can write it), but its
presence on a throttled request is the misconfiguration's signature: the log says so
once an hour per address, naming the setting. Checked on 429 answers only, so no
request that is served pays for it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from starlette.requests import Request

from tokensmith.clock import Clock, SystemClock

from .forms import client_address
from .settings import Settings, env_name

__all__ = ["ProxyHint"]

logger = logging.getLogger("tokensmith.server")

# Addresses named within the hour, oldest first. Bounded, and the oldest is forgotten
# first: a client that gets itself throttled from many addresses with the header set
# can fill it, but never silence the hint for the real proxy's address.
_MAX_NAMED = 64
_RENAME_AFTER = 3600.0


class ProxyHint:
    """Logs, once an hour per peer address, a throttled request that came through a proxy."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        # With trusted proxies, serve already rewrote the client from their header.
        self._enabled = not settings.trusted_proxies
        self._clock = clock or SystemClock()
        self._named: OrderedDict[str, float] = OrderedDict()

    def throttled(self, request: Request) -> None:
        """Called with each request answered 429."""
        if not self._enabled or "x-forwarded-for" not in request.headers:
            return
        address = client_address(request)
        now = self._clock.now()
        named_at = self._named.get(address)
        if named_at is not None and now - named_at < _RENAME_AFTER:
            return
        self._named.pop(address, None)
        self._named[address] = now
        while len(self._named) > _MAX_NAMED:
            self._named.popitem(last=False)
        # The peer address comes from the socket; the header's value is the client's
        # own text and is never logged.
        logger.warning(
            "throttled requests from %s carry X-Forwarded-For, which is not believed: "
            "if %s is a reverse proxy, every client behind it shares one login throttle; "
            "list it in %s",
            address,
            address,
            env_name("trusted_proxies"),
        )
