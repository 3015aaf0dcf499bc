"""The verifier SDK: check tokensmith access tokens in an application server.

from tokensmith.verify import AsyncVerifier, VerifierConfig

config = VerifierConfig(issuer="https://auth.example.com", audience="api",
                        client_id="api", client_secret=SECRET)  # credentials: revocations
async with AsyncVerifier(config) as verifier:
    claims = await verifier.verify(token)   # AccessClaims, or a TokenError with a .code

Depends on ``tokensmith.jose``, ``tokensmith.errors``, ``tokensmith.clock`` and httpx
only; never on the server, the store, the key lifecycle or the CLI.
"""

from tokensmith.errors import KeySetUnavailable, RevokedToken

from ._jwks_state import JWKSCacheMachine, JWKSCachePolicy, JWKSCacheState
from .async_verifier import AsyncVerifier
from .claims import AccessClaims
from .config import ASYMMETRIC_ALGORITHMS, VerifierConfig
from .denylist import Denylist
from .discovery import ProviderMetadata
from .jwks_cache import AsyncRemoteJWKS, RemoteJWKS
from .revocations import RevocationState
from .verifier import Verifier

__all__ = [
    # verifiers and their settings
    "AccessClaims",
    "AsyncVerifier",
    "Verifier",
    "VerifierConfig",
    # the key set cache
    "AsyncRemoteJWKS",
    "JWKSCacheMachine",
    "JWKSCachePolicy",
    "JWKSCacheState",
    "ProviderMetadata",
    "RemoteJWKS",
    # revocation
    "Denylist",
    "RevocationState",
    # constants
    "ASYMMETRIC_ALGORITHMS",
    # errors raised only here (the others are tokensmith.jose's)
    "KeySetUnavailable",
    "RevokedToken",
]
