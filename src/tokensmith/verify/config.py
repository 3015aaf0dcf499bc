"""``VerifierConfig``: every setting of a verifier, validated once when it is built.

Misuse raises ``TypeError``/``ValueError`` here, never on the request path. HMAC
algorithms are refused in a configuration: a shared secret cannot come from a public
key set, so HS256 exists only in the explicit offline ``from_secret`` mode.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field

from tokensmith.jose import DEFAULT_MAX_TOKEN_BYTES, MAX_LEEWAY, SUPPORTED_ALGORITHMS

from ._http import check_url
from ._jwks_state import JWKSCachePolicy
from ._revocation_feed import FEED_PATH
from ._token_cache import DEFAULT_TOKEN_CACHE_SIZE

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DEFAULT_LEEWAY",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_REQUIRED_CLAIMS",
    "VerifierConfig",
]

#: The algorithms a public key set can verify (everything the core has but HMAC).
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(
    alg for alg in SUPPORTED_ALGORITHMS if not alg.startswith("HS")
)
#: RFC 9068 section 2.2 makes these required, beside iss, exp and aud (always checked).
DEFAULT_REQUIRED_CLAIMS = ("sub", "iat", "jti", "client_id")
#: The token server's default: its denylist keeps entries that long past exp.
DEFAULT_LEEWAY = 60
DEFAULT_POLL_INTERVAL = 5.0


def _strings(name: str, value: object, *, allow_empty: bool = False) -> tuple[str, ...]:
    if isinstance(value, str):
        items: tuple[object, ...] = (value,)
    elif isinstance(value, bytes) or not isinstance(value, Collection):
        raise TypeError(f"{name} must be a string or a collection of strings")
    else:
        items = tuple(value)
    if (not items and not allow_empty) or any(type(i) is not str or not i for i in items):
        raise ValueError(f"{name} must hold non-empty strings")
    return tuple(dict.fromkeys(items))  # type: ignore[arg-type]


def _url(name: str, value: str | None, allow_insecure_http: bool) -> None:
    if value is not None:
        problem = check_url(value, what=name, allow_insecure_http=allow_insecure_http)
        if problem is not None:
            raise ValueError(problem)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifierConfig:
    """What a token must satisfy, and where keys and revocations come from."""

    #: The exact ``iss`` value; also the base URL of discovery and of the revocation feed.
    issuer: str
    #: The audience(s) this service answers to; the token's ``aud`` must name one.
    audience: str | Collection[str]
    #: The allow-list. None: the asymmetric algorithms the discovery document
    #: announces (all asymmetric ones when it announces none), or those of the keys.
    algorithms: Collection[str] | None = None
    #: The expected ``typ`` header; None accepts any.
    typ: str | None = "at+jwt"
    required_claims: Collection[str] = DEFAULT_REQUIRED_CLAIMS
    leeway: int | float = DEFAULT_LEEWAY
    max_token_size: int = DEFAULT_MAX_TOKEN_BYTES
    #: Verified tokens remembered (0 turns the cache off).
    token_cache_size: int = DEFAULT_TOKEN_CACHE_SIZE
    #: The key set URL; None finds it by discovery from ``issuer``.
    jwks_uri: str | None = None
    jwks_cache: JWKSCachePolicy = field(default_factory=JWKSCachePolicy)
    #: The feed URL; None is ``{issuer}/oauth/revocations``. Polled only with credentials.
    revocations_uri: str | None = None
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    revocation_poll_interval: float = DEFAULT_POLL_INTERVAL
    #: Accept plain http URLs outside loopback (anyone on the path could swap keys).
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        if type(self.issuer) is not str or not self.issuer:
            raise TypeError("issuer must be a non-empty string")
        object.__setattr__(self, "audience", _strings("audience", self.audience))
        if self.algorithms is not None:
            algorithms = _strings("algorithms", self.algorithms)
            for alg in algorithms:
                if alg.upper().startswith("HS"):
                    raise ValueError(
                        f"{alg} needs a shared secret, never a published key set: "
                        "use Verifier.from_secret for a single-party setup"
                    )
                if alg not in SUPPORTED_ALGORITHMS:
                    raise ValueError(f"unsupported algorithm {alg!r} (and 'none' is never allowed)")
            object.__setattr__(self, "algorithms", algorithms)
        if self.typ is not None and (type(self.typ) is not str or not self.typ):
            raise TypeError("typ must be a non-empty string or None")
        required = _strings("required_claims", self.required_claims, allow_empty=True)
        object.__setattr__(self, "required_claims", required)
        leeway = self.leeway
        if type(leeway) not in (int, float) or not math.isfinite(leeway):
            raise TypeError("leeway must be a number of seconds")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds")
        if type(self.max_token_size) is not int or self.max_token_size <= 0:
            raise ValueError("max_token_size must be a positive integer")
        if type(self.token_cache_size) is not int or self.token_cache_size < 0:
            raise ValueError("token_cache_size must be a non-negative integer")
        if not isinstance(self.jwks_cache, JWKSCachePolicy):
            raise TypeError("jwks_cache must be a JWKSCachePolicy")
        _url("jwks_uri", self.jwks_uri, self.allow_insecure_http)
        _url("revocations_uri", self.revocations_uri, self.allow_insecure_http)
        if (self.client_id is None) != (self.client_secret is None):
            raise ValueError("give both client_id and client_secret, or neither")
        for name in ("client_id", "client_secret"):
            value = getattr(self, name)
            if value is not None and (type(value) is not str or not value):
                raise TypeError(f"{name} must be a non-empty string")
        interval = self.revocation_poll_interval
        if type(interval) not in (int, float) or not math.isfinite(interval) or interval <= 0:
            raise ValueError("revocation_poll_interval must be a positive number of seconds")

    @property
    def polls_revocations(self) -> bool:
        """Whether the revocation feed is polled (it needs a confidential client)."""
        return self.client_id is not None

    def feed_uri(self) -> str:
        """The revocation feed's URL; ``ValueError`` when it cannot be fetched safely."""
        url = self.revocations_uri or self.issuer.rstrip("/") + FEED_PATH
        _url("the revocation feed URL", url, self.allow_insecure_http)
        return url

    def check_issuer_url(self) -> None:
        """Discovery and remote keys need the issuer to be a URL that may be fetched."""
        _url("issuer", self.issuer, self.allow_insecure_http)
