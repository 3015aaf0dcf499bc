"""AccessClaims: a deeply read-only mapping with typed fields, checked when built."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest

from tokensmith.errors import InvalidClaim, MissingClaim
from tokensmith.verify import AccessClaims
from tokensmith.verify.claims import access_claims


def payload(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "iss": "https://auth.example.test",
        "aud": "api",
        "sub": "42",
        "exp": 2000,
        "iat": 1000,
        "jti": "j1",
        "client_id": "demo",
        "scope": "api read",
        "roles": ["EDITOR", "VIEWER"],
        "profile": {"name": "John", "tags": ["a", {"b": [1]}]},
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def test_every_field_is_typed() -> None:
    claims = access_claims(payload())
    assert claims.sub == "42" and claims.iss == "https://auth.example.test"
    assert claims.aud == ("api",)
    assert claims.exp == 2000 and claims.iat == 1000 and claims.nbf is None
    assert claims.jti == "j1" and claims.client_id == "demo"
    assert claims.scopes == ("api", "read")
    assert claims.roles == ("EDITOR", "VIEWER")
    assert claims.has_scope("read") and not claims.has_scope("write")
    assert claims.has_role("EDITOR") and not claims.has_role("ADMIN")
    assert claims.claims["profile"]["name"] == "John"


def test_its_fields_cannot_be_set_or_added() -> None:
    claims = access_claims(payload())
    for name in ("sub", "iss", "aud", "exp", "iat", "nbf", "jti", "client_id", "scopes", "roles"):
        with pytest.raises(AttributeError):
            setattr(claims, name, "admin")
    with pytest.raises(AttributeError):
        claims.extra = "admin"  # type: ignore[attr-defined]
    assert claims.sub == "42" and claims.roles == ("EDITOR", "VIEWER")


def test_the_constructor_checks_a_copy_of_the_payload() -> None:
    values = payload()
    built = AccessClaims(values)
    assert built == access_claims(payload()) and built.roles == ("EDITOR", "VIEWER")
    values["roles"].append("ADMIN")  # the caller's dict is not the one wrapped
    assert built.roles == ("EDITOR", "VIEWER")
    assert AccessClaims(built) == built  # frozen values read back as JSON arrays, objects
    with pytest.raises(InvalidClaim):
        AccessClaims(payload(roles="ADMIN"))
    with pytest.raises(MissingClaim):
        AccessClaims(payload(sub=None))


def test_copies_and_pickles_are_equal_access_claims() -> None:
    claims = access_claims(payload())
    for other in (copy.copy(claims), copy.deepcopy(claims), pickle.loads(pickle.dumps(claims))):
        assert type(other) is AccessClaims and other == claims
        assert other.roles == claims.roles and other.scopes == claims.scopes


def test_repr_names_the_typed_fields() -> None:
    text = repr(access_claims(payload()))
    assert text.startswith("AccessClaims(sub='42', iss='https://auth.example.test', aud=('api',)")
    assert "roles=('EDITOR', 'VIEWER')" in text


def test_the_claims_are_deeply_read_only() -> None:
    # One AccessClaims serves every request with the same token: nothing may change it.
    claims = access_claims(payload())
    with pytest.raises(TypeError):
        claims.claims["roles"] = ["ADMIN"]  # type: ignore[index]
    assert claims.claims["roles"] == ("EDITOR", "VIEWER")
    profile = claims.claims["profile"]
    with pytest.raises(TypeError):
        profile["name"] = "Mallory"
    assert profile["tags"] == ("a", {"b": (1,)})
    with pytest.raises(TypeError):
        profile["tags"][1]["b"] = 2
    with pytest.raises(AttributeError):
        claims.claims["roles"].append("ADMIN")
    assert claims.claims.get("roles") == ("EDITOR", "VIEWER")
    assert claims.claims.get("missing") is None and claims.claims.get("missing", 5) == 5
    assert "roles" in claims.claims and "missing" not in claims.claims


def test_the_view_reads_like_the_payload() -> None:
    values = payload()
    claims = access_claims(dict(values))
    assert len(claims.claims) == len(values) and list(claims.claims) == list(values)
    assert dict(claims.claims)["sub"] == "42"
    assert claims.claims == access_claims(dict(values)).claims
    assert claims.claims is claims  # the typed claims are the mapping itself
    assert claims["roles"] == ("EDITOR", "VIEWER") and claims.get("missing") is None


def test_a_list_audience_becomes_a_tuple() -> None:
    assert access_claims(payload(aud=["a", "b"])).aud == ("a", "b")


def test_absent_optional_claims() -> None:
    claims = access_claims(payload(scope=None, roles=None, jti=None, client_id=None, iat=None))
    assert claims.scopes == () and claims.roles == ()
    assert claims.jti is None and claims.client_id is None and claims.iat is None


def test_scopes_are_split_at_whitespace() -> None:
    assert access_claims(payload(scope="  a  b ")).scopes == ("a", "b")
    assert access_claims(payload(scope="")).scopes == ()


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("scope", ["api"]),
        ("scope", 5),
        ("roles", "EDITOR"),
        ("roles", ["EDITOR", 5]),
        ("roles", {"EDITOR": True}),
        ("roles", ["EDITOR", {"ADMIN": True}]),
        ("roles", ["EDITOR", ["ADMIN"]]),
        ("client_id", 7),
    ],
)
def test_claims_of_the_wrong_type_are_refused(claim: str, value: Any) -> None:
    with pytest.raises(InvalidClaim) as info:
        access_claims(payload(**{claim: value}))
    assert info.value.claim == claim


@pytest.mark.parametrize("claim", ["sub", "iss", "exp"])
def test_claims_every_access_token_has_are_required(claim: str) -> None:
    with pytest.raises(MissingClaim) as info:
        access_claims(payload(**{claim: None}))
    assert info.value.claim == claim


def test_copies_pickles_and_state_never_hand_out_the_shared_payload() -> None:
    claims = access_claims(payload())
    reduced = claims.__reduce__()[1][0]
    reduced["roles"].append("ADMIN")
    reduced["sub"] = "mallory"
    claims.__getstate__()["_data"]["roles"].append("ADMIN")
    claims.__reduce_ex__(4)[1][0]["roles"].append("ADMIN")
    nested = claims["profile"]
    nested.__reduce__()[1][0]["tags"].append("x")
    copy.copy(nested)._data["name"] = "Mallory"
    copied = copy.copy(claims)
    copied._data["roles"] = ("ADMIN",)
    assert claims.roles == ("EDITOR", "VIEWER") and not claims.has_role("ADMIN")
    assert claims.sub == "42" and claims["profile"]["tags"] == ("a", {"b": (1,)})
    assert claims["profile"]["name"] == "John"


def test_roles_and_a_list_audience_are_stored_as_tuples() -> None:
    claims = access_claims(payload(aud=["a", "b"]))
    assert claims.roles is claims.roles  # handed out as stored, not rebuilt per read
    assert claims.aud is claims.aud and claims.aud == ("a", "b")


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("sub", 5),
        ("iss", ["x"]),
        ("jti", 1),
        ("exp", "soon"),
        ("exp", True),
        ("exp", float("inf")),
        ("iat", "2020"),
        ("nbf", [1]),
        ("aud", 7),
        ("aud", []),
        ("aud", ["a", 1]),
    ],
)
def test_the_constructor_applies_the_core_type_rules_too(claim: str, value: Any) -> None:
    # access_claims trusts verify_jwt for these; a payload built by hand has no such check.
    with pytest.raises(InvalidClaim) as info:
        AccessClaims(payload(**{claim: value}))
    assert info.value.claim == claim


@pytest.mark.parametrize("claim", ["nbf", "iat", "aud", "jti"])
def test_the_constructor_refuses_a_null_claim_as_the_core_does(claim: str) -> None:
    # verify_jwt refuses "nbf": null and the like: a hand-built payload may not hold one.
    with pytest.raises(InvalidClaim) as info:
        AccessClaims({**payload(), claim: None})
    assert info.value.claim == claim


def test_the_constructor_builds_the_subclass_it_is_called_on() -> None:
    class Mine(AccessClaims):
        __slots__ = ()

    built = Mine(payload())
    assert type(built) is Mine and built.sub == "42"
    with pytest.raises(TypeError):
        AccessClaims(["not", "a", "mapping"])  # type: ignore[arg-type]
