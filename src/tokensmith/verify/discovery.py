"""Discovery: the issuer's metadata document gives the key set URL and its algorithms.

``{issuer}/.well-known/openid-configuration`` is read once. Its ``issuer`` must equal
the configured issuer exactly (OpenID Connect Discovery 4.3, RFC 8414 3.3): a document
served for another issuer would otherwise hand us that issuer's keys. The ``jwks_uri``
must be as safe as the issuer's own URL (https unless insecure HTTP is allowed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ._http import FetchFailed, check_url

__all__ = ["DISCOVERY_PATH", "ProviderMetadata", "metadata_url", "parse_metadata"]

DISCOVERY_PATH = "/.well-known/openid-configuration"
#: The metadata names that may list signature algorithms, in the order they are read.
#: tokensmith's own server lists none; its keys carry their ``alg`` instead.
_ALGORITHM_LISTS = ("id_token_signing_alg_values_supported",)


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """What a verifier takes from the discovery document."""

    issuer: str
    jwks_uri: str
    #: The signature algorithms the document announces, None when it announces none.
    signing_algorithms: tuple[str, ...] | None


def metadata_url(issuer: str) -> str:
    """The discovery document's URL for ``issuer`` (OpenID Connect: appended to the issuer)."""
    return issuer.rstrip("/") + DISCOVERY_PATH


def parse_metadata(issuer: str, body: bytes, *, allow_insecure_http: bool) -> ProviderMetadata:
    """Read and check a discovery document; raise ``FetchFailed`` with the reason."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise FetchFailed("discovery: the document is not JSON") from None
    if type(document) is not dict:
        raise FetchFailed("discovery: the document is not a JSON object")
    if document.get("issuer") != issuer:
        raise FetchFailed("discovery: the document's issuer does not match the configured one")
    jwks_uri = document.get("jwks_uri")
    if type(jwks_uri) is not str:
        raise FetchFailed("discovery: the document has no jwks_uri")
    problem = check_url(jwks_uri, what="jwks_uri", allow_insecure_http=allow_insecure_http)
    if problem is not None:
        raise FetchFailed(f"discovery: {problem}")
    algorithms: tuple[str, ...] | None = None
    for name in _ALGORITHM_LISTS:
        if name in document:
            value = document[name]
            if type(value) is not list or any(type(item) is not str for item in value):
                raise FetchFailed(f"discovery: {name} is not a list of strings")
            algorithms = tuple(value)
            break
    return ProviderMetadata(issuer=issuer, jwks_uri=jwks_uri, signing_algorithms=algorithms)
