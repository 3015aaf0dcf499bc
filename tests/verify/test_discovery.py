"""Discovery: the issuer's metadata names the key set; a document for another issuer is refused."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from tokensmith.clock import FixedClock
from tokensmith.errors import KeySetUnavailable
from tokensmith.jose import JWK
from tokensmith.verify import AsyncRemoteJWKS, RemoteJWKS
from tokensmith.verify._http import FetchFailed
from tokensmith.verify.discovery import metadata_url, parse_metadata

from .conftest import DISCOVERY_URI, ISSUER, JWKS_URI, FakeIssuer

pytestmark = pytest.mark.anyio


def parse(document: dict[str, Any], issuer: str = ISSUER, insecure: bool = False) -> Any:
    return parse_metadata(issuer, json.dumps(document).encode(), allow_insecure_http=insecure)


def test_the_document_url_is_appended_to_the_issuer() -> None:
    assert metadata_url(ISSUER) == DISCOVERY_URI
    assert metadata_url(ISSUER + "/") == DISCOVERY_URI
    assert metadata_url("https://x.test/tenant") == "https://x.test/tenant" + (
        "/.well-known/openid-configuration"
    )


def test_the_token_servers_document_is_read() -> None:
    metadata = parse({"issuer": ISSUER, "jwks_uri": JWKS_URI, "token_endpoint": "x"})
    assert metadata.issuer == ISSUER and metadata.jwks_uri == JWKS_URI
    assert metadata.signing_algorithms is None  # tokensmith's server announces none


def test_announced_algorithms_are_read() -> None:
    metadata = parse(
        {
            "issuer": ISSUER,
            "jwks_uri": JWKS_URI,
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }
    )
    assert metadata.signing_algorithms == ("RS256", "ES256")


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ({"issuer": "https://evil.example", "jwks_uri": JWKS_URI}, "issuer does not match"),
        ({"issuer": ISSUER + "/", "jwks_uri": JWKS_URI}, "issuer does not match"),
        ({"jwks_uri": JWKS_URI}, "issuer does not match"),
        ({"issuer": ISSUER}, "no jwks_uri"),
        ({"issuer": ISSUER, "jwks_uri": 5}, "no jwks_uri"),
        ({"issuer": ISSUER, "jwks_uri": "http://auth.example.test/jwks"}, "https"),
        ({"issuer": ISSUER, "jwks_uri": "/jwks.json"}, "absolute"),
        ({"issuer": ISSUER, "jwks_uri": "https://[::1/jwks"}, "not a valid URL"),
        ({"issuer": ISSUER, "jwks_uri": "https://a.test:99999/jwks"}, "not a valid URL"),
        ({"issuer": ISSUER, "jwks_uri": "https://a.test/jw\x00ks"}, "control characters"),
        (
            {"issuer": ISSUER, "jwks_uri": JWKS_URI, "id_token_signing_alg_values_supported": "x"},
            "not a list of strings",
        ),
    ],
)
def test_bad_documents_are_refused(document: dict[str, Any], reason: str) -> None:
    with pytest.raises(FetchFailed, match=reason):
        parse(document)


@pytest.mark.parametrize("body", [b"<html>", b"[1, 2]", b'"text"'])
def test_a_document_that_is_no_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(FetchFailed, match="discovery"):
        parse_metadata(ISSUER, body, allow_insecure_http=False)


def test_the_driver_reads_the_document_with_every_fetch_of_the_key_set(
    fake: FakeIssuer, clock: FixedClock
) -> None:
    jwks = RemoteJWKS(issuer=ISSUER, clock=clock, transport=fake.transport())
    assert "key-1" in jwks.keys()[0]
    assert jwks.metadata is not None and jwks.metadata.signing_algorithms is None
    fake.metadata = {**fake.default_metadata(), "id_token_signing_alg_values_supported": ["ES256"]}
    jwks.keys()  # fresh: no request
    assert fake.counts["/.well-known/openid-configuration"] == 1
    clock.advance(3600)
    jwks.keys()
    assert fake.counts["/.well-known/openid-configuration"] == 2
    assert fake.jwks_fetches == 2
    assert jwks.metadata.signing_algorithms == ("ES256",)  # what the issuer says now


def test_a_failed_rediscovery_keeps_the_last_document_and_still_fetches_the_keys(
    fake: FakeIssuer, clock: FixedClock, es_key_2: JWK, caplog: pytest.LogCaptureFixture
) -> None:
    jwks = RemoteJWKS(issuer=ISSUER, clock=clock, transport=fake.transport())
    jwks.keys()
    before = jwks.metadata
    fake.metadata = {"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"}
    fake.keys = [*fake.keys, es_key_2]
    clock.advance(3600)
    assert "key-2" in jwks.keys()[0]
    assert jwks.metadata is before and fake.jwks_fetches == 2
    assert "the last document stands" in caplog.text


def test_an_issuer_mismatch_leaves_the_verifier_without_keys_and_says_why(
    fake: FakeIssuer, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake.metadata = {"issuer": "https://evil.example", "jwks_uri": "https://evil.example/jwks"}
    jwks = RemoteJWKS(issuer=ISSUER, clock=clock, transport=fake.transport())
    with pytest.raises(KeySetUnavailable, match="issuer does not match"):
        jwks.keys()
    assert fake.jwks_fetches == 0
    assert "issuer does not match" in caplog.text
    assert jwks.metadata is None


async def test_the_async_driver_discovers_too(fake: FakeIssuer, clock: FixedClock) -> None:
    jwks = AsyncRemoteJWKS(issuer=ISSUER, clock=clock, transport=fake.async_transport())
    keys, _ = await jwks.keys()
    assert "key-1" in keys and fake.counts["/.well-known/openid-configuration"] == 1
    await jwks.aclose()


def test_a_failed_discovery_counts_as_a_failed_fetch(
    fake: FakeIssuer, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="tokensmith.verify")
    fake.metadata = {"issuer": ISSUER}
    jwks = RemoteJWKS(issuer=ISSUER, clock=clock, transport=fake.transport())
    for _ in range(3):
        with pytest.raises(KeySetUnavailable):
            jwks.keys()
    assert fake.counts["/.well-known/openid-configuration"] == 1  # the cooldown holds
    assert len(caplog.records) == 1
