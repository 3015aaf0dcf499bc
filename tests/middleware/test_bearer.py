"""RFC 6750 for every framework (``tokensmith.middleware.bearer``), without any framework.

Reading ``Authorization`` (the scheme case-insensitively, RFC 9110 section 11.1; a
b64token after it), the three answers (401 without an error code when no credential
was sent, 401 ``invalid_token``, 403 ``insufficient_scope``) and the access check.
"""

from __future__ import annotations

import re

import pytest

from tokensmith.errors import (
    AlgorithmNotAllowed,
    BadSignature,
    ExpiredToken,
    InvalidClaim,
    KeyNotFound,
    KeySetUnavailable,
    MalformedToken,
    MissingClaim,
    RevokedToken,
    TokenError,
    TokensmithError,
)
from tokensmith.middleware import (
    AuthError,
    Forbidden,
    InvalidBearer,
    MissingBearer,
    parse_authorization,
)
from tokensmith.middleware.bearer import Unavailable, auth_error_for, check_access
from tokensmith.verify import AccessClaims, Verifier

from .helpers import Keys, sync_verifier, token

DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def claims_with(keys: Keys, **overrides: object) -> AccessClaims:
    verifier: Verifier = sync_verifier(keys)
    return verifier.verify(token(keys, **overrides))


# -- parse_authorization ----------------------------------------------------------------


def test_no_header_is_no_token() -> None:
    assert parse_authorization(None) is None


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_scheme_is_case_insensitive(scheme: str) -> None:
    assert parse_authorization(f"{scheme} {TOKEN}") == TOKEN


@pytest.mark.parametrize(
    "value",
    [
        TOKEN,
        "abc-._~+/",
        "abc==",  # b64token allows trailing '='
        "A",
    ],
)
def test_every_b64token_character_is_accepted(value: str) -> None:
    assert parse_authorization(f"Bearer {value}") == value


def test_spaces_around_the_token_are_dropped() -> None:
    # credentials = auth-scheme 1*SP token68: several spaces are still one separator.
    assert parse_authorization(f"Bearer   {TOKEN}  ") == TOKEN


@pytest.mark.parametrize(
    "header",
    [
        f"Basic {TOKEN}",
        "Basic dXNlcjpwYXNz",
        f"Digest {TOKEN}",
        f"Token {TOKEN}",
        f"Bearer{TOKEN}",  # no separator: the scheme is the whole word
        "",
        "   ",
        TOKEN,  # a token without a scheme is a scheme of its own
    ],
)
def test_another_scheme_carries_no_bearer_token(header: str) -> None:
    # RFC 6750 section 3.1: an unsupported method is answered like no credentials.
    assert parse_authorization(header) is None


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer\t{TOKEN}",  # RFC 7235: the separator is SP
        f"Bearer:{TOKEN}",
        f"bearer,{TOKEN}",
        f"BEARER\u00a0{TOKEN}",
    ],
)
def test_a_bearer_scheme_without_a_space_is_a_malformed_attempt(header: str) -> None:
    with pytest.raises(InvalidBearer) as caught:
        parse_authorization(header)
    assert caught.value.status == 401
    assert caught.value.error == "invalid_token"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearer a b",
        f"Bearer {TOKEN},x",
        f'Bearer "{TOKEN}"',
        "Bearer =abc",  # padding only at the end
        "Bearer abc=def",
        f"Bearer {TOKEN}\n",
        "Bearer tok\x00en",
        "Bearer t\u00f6ken",
    ],
)
def test_a_malformed_bearer_token_is_invalid(header: str) -> None:
    with pytest.raises(InvalidBearer) as caught:
        parse_authorization(header)
    assert caught.value.description == "The bearer token is malformed."


def test_parse_errors_never_echo_the_header() -> None:
    secret = "Zm9vYmFyYmF6cXV4c2VjcmV0"
    for header in (f"Bearer\t{secret}", f"Bearer {secret} {secret}"):
        with pytest.raises(InvalidBearer) as caught:
            parse_authorization(header)
        assert secret not in str(caught.value)
        assert secret not in caught.value.challenge("api")
        assert secret not in repr(caught.value.body())


# -- the answers ------------------------------------------------------------------------


def test_missing_bearer_is_a_bare_challenge() -> None:
    error = MissingBearer()
    assert error.status == 401
    assert error.challenge("app") == 'Bearer realm="app"'
    assert error.headers("app") == {
        "WWW-Authenticate": 'Bearer realm="app"',
        "Cache-Control": "no-store",
    }
    assert error.body() == {"error": "unauthorized"}


def test_invalid_bearer_names_the_error_and_its_description() -> None:
    error = InvalidBearer("The signature does not verify.")
    assert error.status == 401
    assert error.challenge("app") == (
        'Bearer realm="app", error="invalid_token", '
        'error_description="The signature does not verify."'
    )
    assert error.body() == {
        "error": "invalid_token",
        "error_description": "The signature does not verify.",
    }
    assert error.headers("app")["Cache-Control"] == "no-store"


def test_invalid_bearer_without_description() -> None:
    error = InvalidBearer()
    assert error.challenge("api") == 'Bearer realm="api", error="invalid_token"'
    assert error.body() == {"error": "invalid_token"}


def test_forbidden_is_403_insufficient_scope() -> None:
    error = Forbidden("The token lacks a role this operation needs.")
    assert error.status == 403
    assert error.challenge("api").startswith('Bearer realm="api", error="insufficient_scope"')
    assert error.body()["error"] == "insufficient_scope"


def test_unavailable_is_503_with_retry_after_and_no_challenge() -> None:
    error = Unavailable("The keys to verify tokens are not available yet.")
    assert error.status == 503
    headers = error.headers("api")
    assert headers["Retry-After"] == "5"
    assert "WWW-Authenticate" not in headers
    assert error.body()["error"] == "temporarily_unavailable"


def test_every_answer_is_an_auth_error() -> None:
    for cls in (MissingBearer, InvalidBearer, Forbidden, Unavailable):
        assert issubclass(cls, AuthError)


# -- auth_error_for ---------------------------------------------------------------------

TOKEN_ERRORS = [
    MalformedToken(),
    AlgorithmNotAllowed(),
    KeyNotFound(),
    BadSignature(),
    ExpiredToken(),
    MissingClaim("jti"),
    InvalidClaim("aud", "The aud claim does not name this audience."),
    RevokedToken(),
    TokenError(),
]


@pytest.mark.parametrize("exc", TOKEN_ERRORS, ids=lambda e: type(e).__name__)
def test_token_errors_become_invalid_token_with_the_fixed_class_text(exc: TokenError) -> None:
    answer = auth_error_for(exc)
    assert isinstance(answer, InvalidBearer)
    assert answer.description is not None
    # The class's fixed text, never the instance's (which may name a claim or value).
    assert answer.description.rstrip(".") == type(exc).description.rstrip(".")
    assert answer.description.endswith(".")
    assert DESCRIPTION.fullmatch(answer.description)


def test_a_detailed_message_is_not_passed_on() -> None:
    exc = InvalidClaim("iss", "The iss claim is 'https://evil.example' not 'https://ok'.")
    answer = auth_error_for(exc)
    assert "evil" not in (answer.description or "")
    assert "evil" not in answer.challenge("api")


def test_no_key_set_is_503_not_the_clients_fault() -> None:
    answer = auth_error_for(KeySetUnavailable("Last error: timed out."))
    assert isinstance(answer, Unavailable)
    assert answer.status == 503
    assert "timed out" not in (answer.description or "")


def test_another_library_error_is_invalid_token() -> None:
    answer = auth_error_for(TokensmithError())
    assert isinstance(answer, InvalidBearer)
    assert answer.description == "The token could not be verified."


# -- check_access -----------------------------------------------------------------------


def test_no_claims_is_missing_bearer() -> None:
    with pytest.raises(MissingBearer):
        check_access(None)


def test_any_one_role_passes(keys: Keys) -> None:
    claims = claims_with(keys, roles=["EDITOR"])
    assert check_access(claims, roles=["EDITOR", "ADMIN"]) is claims
    assert check_access(claims) is claims


def test_a_missing_role_is_forbidden(keys: Keys) -> None:
    claims = claims_with(keys, roles=["EDITOR"])
    with pytest.raises(Forbidden) as caught:
        check_access(claims, roles=["ADMIN"])
    assert caught.value.description == "The token lacks a role this operation needs."


def test_roles_are_case_sensitive(keys: Keys) -> None:
    claims = claims_with(keys, roles=["admin"])
    with pytest.raises(Forbidden):
        check_access(claims, roles=["ADMIN"])


def test_no_roles_claim_is_forbidden_when_a_role_is_needed(keys: Keys) -> None:
    claims = claims_with(keys, roles=None)
    assert claims.roles == ()
    with pytest.raises(Forbidden):
        check_access(claims, roles=["EDITOR"])


def test_every_scope_is_needed(keys: Keys) -> None:
    claims = claims_with(keys, scope="read write")
    assert check_access(claims, scopes=["read", "write"]) is claims
    with pytest.raises(Forbidden) as caught:
        check_access(claims, scopes=["read", "admin"])
    assert caught.value.description == "The token lacks a scope this operation needs."


def test_a_scope_is_a_whole_word(keys: Keys) -> None:
    claims = claims_with(keys, scope="readonly")
    with pytest.raises(Forbidden):
        check_access(claims, scopes=["read"])


def test_roles_and_scopes_together(keys: Keys) -> None:
    claims = claims_with(keys, roles=["ADMIN"], scope="read")
    assert check_access(claims, roles=["ADMIN"], scopes=["read"]) is claims
    with pytest.raises(Forbidden):
        check_access(claims, roles=["ADMIN"], scopes=["write"])
    with pytest.raises(Forbidden):
        check_access(claims, roles=["EDITOR"], scopes=["read"])


def test_a_generator_of_roles_is_read_whole(keys: Keys) -> None:
    claims = claims_with(keys, roles=["ADMIN"])
    assert check_access(claims, roles=(r for r in ["EDITOR", "ADMIN"])) is claims


def test_check_access_refuses_a_string_of_roles_or_scopes(keys: Keys) -> None:
    # roles="ADMIN" would be read as the roles A, D, M, I, N: a token with "A" would pass.
    claims = claims_with(keys, roles=["A"])
    with pytest.raises(TypeError):
        check_access(claims, roles="ADMIN")
    with pytest.raises(TypeError):
        check_access(claims, scopes="read")
    assert check_access(claims, roles=["A"]) is claims
