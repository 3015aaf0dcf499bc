"""The sync and async JWKS drivers over a fake issuer (``httpx.MockTransport``)."""

from __future__ import annotations

import asyncio
import gzip
import logging
import threading

import httpx
import pytest

from tokensmith.clock import FixedClock
from tokensmith.errors import KeySetUnavailable
from tokensmith.jose import JWK
from tokensmith.verify import AsyncRemoteJWKS, JWKSCachePolicy, RemoteJWKS

from .conftest import ISSUER, JWKS_URI, FakeIssuer

pytestmark = pytest.mark.anyio

POLICY = JWKSCachePolicy(min_refresh=60, max_refresh=3600, cooldown=30, stale_if_error=3600)


def remote(fake: FakeIssuer, clock: FixedClock, **kwargs: object) -> RemoteJWKS:
    return RemoteJWKS(
        JWKS_URI,
        policy=kwargs.pop("policy", POLICY),  # type: ignore[arg-type]
        clock=clock,
        transport=fake.transport(),
        **kwargs,  # type: ignore[arg-type]
    )


# -- fetching and freshness ---------------------------------------------------------------


def test_the_first_use_fetches_then_the_set_is_served_fresh(
    fake: FakeIssuer, clock: FixedClock
) -> None:
    jwks = remote(fake, clock)
    keys, until = jwks.keys()
    assert "key-1" in keys and until == clock.now() + 600
    clock.advance(599)
    for _ in range(100):
        assert jwks.keys()[0] is keys
    assert fake.jwks_fetches == 1
    request = fake.requests[0]
    assert request.headers["accept-encoding"] == "identity"
    assert "if-none-match" not in request.headers
    jwks.close()


def test_a_stale_set_is_revalidated_with_its_etag(fake: FakeIssuer, clock: FixedClock) -> None:
    jwks = remote(fake, clock)
    keys, _ = jwks.keys()
    clock.advance(600)
    again, until = jwks.keys()
    assert fake.jwks_fetches == 2
    assert fake.requests[-1].headers["if-none-match"].startswith('"')
    assert again is keys and until == clock.now() + 600  # the 304 renewed freshness


def test_keys_removed_from_the_set_stop_at_the_next_refresh(
    fake: FakeIssuer, clock: FixedClock, es_key_2: JWK
) -> None:
    jwks = remote(fake, clock)
    assert "key-1" in jwks.keys()[0]
    fake.keys = [es_key_2]
    clock.advance(599)
    assert "key-1" in jwks.keys()[0]
    clock.advance(1)
    keys, _ = jwks.keys()
    assert "key-1" not in keys and "key-2" in keys


def test_reload_fetches_now_whatever_the_cooldown(fake: FakeIssuer, clock: FixedClock) -> None:
    jwks = remote(fake, clock)
    jwks.keys()
    state = jwks.reload()
    assert fake.jwks_fetches == 2 and state.fresh and state.key_ids == ("key-1",)


# -- the cooldown on unknown kids -----------------------------------------------------------


def test_unknown_kids_fetch_at_most_once_per_cooldown(fake: FakeIssuer, clock: FixedClock) -> None:
    jwks = remote(fake, clock)
    keys, _ = jwks.keys()
    clock.advance(30)
    results = [jwks.keys_after_unknown_kid(keys) for _ in range(1000)]
    assert results == [None] * 1000
    assert fake.jwks_fetches == 2
    clock.advance(29)
    assert jwks.keys_after_unknown_kid(keys) is None
    assert fake.jwks_fetches == 2
    clock.advance(1)
    jwks.keys_after_unknown_kid(keys)
    assert fake.jwks_fetches == 3


def test_a_kid_published_by_a_rotation_is_found_on_the_first_miss_after_the_cooldown(
    fake: FakeIssuer, clock: FixedClock, es_key_2: JWK
) -> None:
    jwks = remote(fake, clock)
    keys, _ = jwks.keys()
    fake.keys = [fake.keys[0], es_key_2]
    assert jwks.keys_after_unknown_kid(keys) is None  # still cooling down from the first fetch
    clock.advance(30)
    newer = jwks.keys_after_unknown_kid(keys)
    assert newer is not None and "key-2" in newer
    assert fake.jwks_fetches == 2


def test_a_miss_against_an_old_set_gets_the_newer_one_without_fetching(
    fake: FakeIssuer, clock: FixedClock, es_key_2: JWK
) -> None:
    jwks = remote(fake, clock)
    old, _ = jwks.keys()
    fake.keys = [es_key_2]
    jwks.reload()
    newer = jwks.keys_after_unknown_kid(old)
    assert newer is not None and "key-2" in newer and fake.jwks_fetches == 2


# -- failures -------------------------------------------------------------------------------


def test_stale_if_error_serves_the_last_set_and_logs_the_outage_once(
    fake: FakeIssuer, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tokensmith.verify")
    jwks = remote(fake, clock)
    keys, _ = jwks.keys()
    fake.jwks_error = httpx.ConnectError("refused")
    for _ in range(20):  # 20 retries, one per cooldown, each serving the stale set
        clock.advance(600 if fake.jwks_fetches == 1 else 30)
        assert jwks.keys()[0] is keys
    assert fake.jwks_fetches == 21
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ConnectError" in warnings[0].getMessage()
    assert "serving the last good key set" in warnings[0].getMessage()
    state = jwks.state
    assert state.stale and state.last_error == "request failed (ConnectError)"
    fake.jwks_error = None
    clock.advance(30)
    jwks.keys()
    assert jwks.state.fresh and jwks.state.last_error is None
    assert [r.getMessage() for r in caplog.records][-1].endswith("succeeded again")


def test_when_the_stale_window_ends_verification_has_no_keys(
    fake: FakeIssuer, clock: FixedClock
) -> None:
    jwks = remote(fake, clock)
    jwks.keys()
    fake.jwks_status = 503
    clock.advance(600 + 3600 - 1)
    assert jwks.keys()
    clock.advance(1)
    with pytest.raises(KeySetUnavailable, match="HTTP 503"):
        jwks.keys()
    # Within the cooldown no fetch is tried: the outage costs one fetch per cooldown.
    count = fake.jwks_fetches
    with pytest.raises(KeySetUnavailable):
        jwks.keys()
    assert fake.jwks_fetches == count


def test_no_key_set_at_all_raises_and_retries_after_the_cooldown(
    fake: FakeIssuer, clock: FixedClock
) -> None:
    fake.jwks_status = 500
    jwks = remote(fake, clock)
    for _ in range(5):
        with pytest.raises(KeySetUnavailable):
            jwks.keys()
    assert fake.jwks_fetches == 1
    fake.jwks_status = 200
    clock.advance(30)
    assert "key-1" in jwks.keys()[0]


def test_redirects_are_not_followed(fake: FakeIssuer, clock: FixedClock) -> None:
    fake.jwks_status = 302
    fake.jwks_headers = {"Location": "https://evil.example/jwks.json"}
    jwks = remote(fake, clock)
    with pytest.raises(KeySetUnavailable, match="redirect refused"):
        jwks.keys()
    assert [r.url.host for r in fake.requests] == ["auth.example.test"]


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (b'{"keys": [' + b'{"kty":"oct","k":"AAAA"},' * 40_000 + b"]}", {}, "larger than"),
        (b"not json", {}, "not a valid JWK Set"),
        (gzip.compress(b'{"keys": []}'), {"Content-Encoding": "gzip"}, "compressed"),
    ],
)
def test_an_oversized_malformed_or_compressed_answer_keeps_the_old_set(
    fake: FakeIssuer, clock: FixedClock, body: bytes, headers: dict[str, str], reason: str
) -> None:
    jwks = remote(fake, clock)
    keys, _ = jwks.keys()
    fake.jwks_body, fake.jwks_headers = body, headers
    clock.advance(600)
    assert jwks.keys()[0] is keys
    assert jwks.state.last_error is not None and reason in jwks.state.last_error


def test_a_timeout_is_a_failure_not_an_exception(fake: FakeIssuer, clock: FixedClock) -> None:
    fake.jwks_error = httpx.ReadTimeout("slow")
    jwks = remote(fake, clock)
    with pytest.raises(KeySetUnavailable, match="timed out"):
        jwks.keys()


def test_the_fetch_timeout_is_passed_on_every_request(fake: FakeIssuer, clock: FixedClock) -> None:
    jwks = remote(fake, clock, policy=JWKSCachePolicy(timeout=2.5))
    jwks.keys()
    assert fake.requests[0].extensions["timeout"] == {
        "connect": 2.5,
        "read": 2.5,
        "write": 2.5,
        "pool": 2.5,
    }


# -- construction -------------------------------------------------------------------------


def test_exactly_one_source_is_needed() -> None:
    with pytest.raises(ValueError):
        RemoteJWKS()
    with pytest.raises(ValueError):
        RemoteJWKS(JWKS_URI, issuer=ISSUER)


@pytest.mark.parametrize(
    "url", ["http://auth.example.test/jwks", "ftp://x/y", "/jwks.json", "https://u:p@x/jwks"]
)
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        RemoteJWKS(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/jwks", "http://localhost/j", "http://[::1]/j"]
)
def test_plain_http_is_fine_on_loopback(url: str) -> None:
    RemoteJWKS(url).close()


def test_plain_http_elsewhere_needs_an_opt_in() -> None:
    RemoteJWKS("http://auth.internal/jwks", allow_insecure_http=True).close()


# -- concurrency --------------------------------------------------------------------------


async def test_concurrent_async_misses_share_one_fetch(fake: FakeIssuer, clock: FixedClock) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        entered.set()
        await release.wait()
        return fake.handle(request)

    jwks = AsyncRemoteJWKS(
        JWKS_URI, policy=POLICY, clock=clock, transport=httpx.MockTransport(slow)
    )
    calls = [asyncio.ensure_future(jwks.keys()) for _ in range(50)]
    # The fetch starts only after every caller has found it in flight and waits.
    await asyncio.wait_for(entered.wait(), 10)
    release.set()
    results = await asyncio.gather(*calls)
    assert fake.jwks_fetches == 1
    assert all(keys is results[0][0] for keys, _ in results)
    await jwks.aclose()


async def test_async_unknown_kids_share_one_fetch_and_respect_the_cooldown(
    fake: FakeIssuer, clock: FixedClock, es_key_2: JWK
) -> None:
    jwks = AsyncRemoteJWKS(JWKS_URI, policy=POLICY, clock=clock, transport=fake.async_transport())
    keys, _ = await jwks.keys()
    fake.keys = [fake.keys[0], es_key_2]
    assert await jwks.keys_after_unknown_kid(keys) is None
    clock.advance(30)
    results = await asyncio.gather(*(jwks.keys_after_unknown_kid(keys) for _ in range(50)))
    assert fake.jwks_fetches == 2
    assert all(newer is not None and "key-2" in newer for newer in results)
    await jwks.aclose()


async def test_async_stale_serving_and_reload(fake: FakeIssuer, clock: FixedClock) -> None:
    jwks = AsyncRemoteJWKS(JWKS_URI, policy=POLICY, clock=clock, transport=fake.async_transport())
    keys, _ = await jwks.keys()
    fake.jwks_status = 500
    clock.advance(600)
    assert (await jwks.keys())[0] is keys
    state = await jwks.reload()
    assert state.stale and state.last_error == "HTTP 500" and fake.jwks_fetches == 3
    await jwks.aclose()


def test_concurrent_sync_misses_wait_for_one_fetch(fake: FakeIssuer, clock: FixedClock) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        entered.set()
        assert release.wait(10)
        return fake.handle(request)

    jwks = RemoteJWKS(JWKS_URI, policy=POLICY, clock=clock, transport=httpx.MockTransport(slow))
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(jwks.keys()[0])) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert entered.wait(10)
    release.set()
    for thread in threads:
        thread.join(10)
    assert fake.jwks_fetches == 1
    assert len(results) == 8 and all(keys is results[0] for keys in results)
