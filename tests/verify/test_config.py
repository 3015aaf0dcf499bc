"""VerifierConfig: misuse fails at construction, never on the request path."""

from __future__ import annotations

from typing import Any

import pytest

from tokensmith.verify import ASYMMETRIC_ALGORITHMS, JWKSCachePolicy, VerifierConfig

from .conftest import AUDIENCE, ISSUER


def config(**overrides: Any) -> VerifierConfig:
    values: dict[str, Any] = {"issuer": ISSUER, "audience": AUDIENCE}
    values.update(overrides)
    return VerifierConfig(**values)


def test_the_defaults() -> None:
    c = config()
    assert c.audience == (AUDIENCE,)
    assert c.algorithms is None and c.typ == "at+jwt"
    assert c.required_claims == ("sub", "iat", "jti", "client_id")
    assert c.leeway == 60 and c.max_token_size == 8192 and c.token_cache_size == 10_000
    assert c.jwks_cache == JWKSCachePolicy()
    assert c.jwks_cache.cooldown == 30 and c.jwks_cache.timeout == 5
    assert c.jwks_cache.stale_if_error == 86_400
    assert c.revocation_poll_interval == 5 and not c.polls_revocations
    assert c.feed_uri() == ISSUER + "/oauth/revocations"


def test_collections_are_kept_as_tuples() -> None:
    c = config(audience=["a", "b", "a"], algorithms=["ES256"], required_claims=["sub"])
    assert c.audience == ("a", "b") and c.algorithms == ("ES256",)
    assert c.required_claims == ("sub",)


def test_the_asymmetric_algorithms() -> None:
    assert "HS256" not in ASYMMETRIC_ALGORITHMS
    assert {"RS256", "PS256", "ES256", "EdDSA"} <= ASYMMETRIC_ALGORITHMS


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "hs256"])
def test_hmac_algorithms_are_refused_with_remote_keys(alg: str) -> None:
    with pytest.raises(ValueError, match="from_secret"):
        config(algorithms=["RS256", alg])


@pytest.mark.parametrize("alg", ["none", "None", "RS1", "ES256K"])
def test_unknown_algorithms_and_none_are_refused(alg: str) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        config(algorithms=[alg])


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"issuer": ""}, TypeError),
        ({"audience": []}, ValueError),
        ({"audience": [""]}, ValueError),
        ({"audience": b"api"}, TypeError),
        ({"algorithms": []}, ValueError),
        ({"typ": ""}, TypeError),
        ({"leeway": -1}, ValueError),
        ({"leeway": 301}, ValueError),
        ({"leeway": "60"}, TypeError),
        ({"max_token_size": 0}, ValueError),
        ({"token_cache_size": -1}, ValueError),
        ({"jwks_cache": {"cooldown": 1}}, TypeError),
        ({"jwks_uri": "http://auth.example.test/jwks"}, ValueError),
        ({"revocations_uri": "ftp://x/y"}, ValueError),
        ({"client_id": "rs"}, ValueError),
        ({"client_secret": "s"}, ValueError),
        ({"client_id": "", "client_secret": "s"}, TypeError),
        ({"revocation_poll_interval": 0}, ValueError),
    ],
)
def test_misuse_is_refused(overrides: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        config(**overrides)


def test_the_secret_stays_out_of_the_repr() -> None:
    c = config(client_id="rs", client_secret="very-secret-value")
    assert c.polls_revocations
    assert "very-secret-value" not in repr(c)


def test_the_feed_url_can_be_given_and_must_be_safe() -> None:
    assert config(revocations_uri="https://feed.test/r").feed_uri() == "https://feed.test/r"
    with pytest.raises(ValueError):
        config(issuer="http://auth.example.test").feed_uri()
    assert config(issuer="http://auth.example.test", allow_insecure_http=True).feed_uri()


def test_a_non_url_issuer_suits_offline_use_only() -> None:
    c = config(issuer="my-app")
    with pytest.raises(ValueError):
        c.check_issuer_url()
