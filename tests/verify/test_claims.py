"""AccessClaims: typed, deeply read-only, built from a verified payload."""

from __future__ import annotations

from typing import Any

import pytest

from tokensmith.errors import InvalidClaim, MissingClaim
from tokensmith.verify import AccessClaims
from tokensmith.verify.claims import SharedValues, access_claims


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


def test_it_is_an_immutable_named_tuple_equal_to_its_constructor_form() -> None:
    claims = access_claims(payload())
    with pytest.raises(AttributeError):
        claims.sub = "admin"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        claims.extra = "admin"  # type: ignore[attr-defined]
    built = AccessClaims(**claims._asdict())
    assert built == claims and repr(built) == repr(claims)
    assert repr(claims).startswith("AccessClaims(sub='42', iss=")
    assert AccessClaims._fields == (
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "nbf",
        "jti",
        "client_id",
        "scopes",
        "roles",
        "claims",
    )


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
    assert "ClaimsView" in repr(claims.claims) and "'sub': '42'" in repr(claims.claims)


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
@pytest.mark.parametrize("shared", [None, SharedValues()], ids=["alone", "shared"])
def test_claims_of_the_wrong_type_are_refused(
    claim: str, value: Any, shared: SharedValues | None
) -> None:
    with pytest.raises(InvalidClaim) as info:
        access_claims(payload(**{claim: value}), shared)
    assert info.value.claim == claim


@pytest.mark.parametrize("claim", ["sub", "iss", "exp"])
def test_claims_every_access_token_has_are_required(claim: str) -> None:
    with pytest.raises(MissingClaim) as info:
        access_claims(payload(**{claim: None}))
    assert info.value.claim == claim


def test_shared_values_give_equal_claims_and_one_copy_of_each_repeated_value() -> None:
    shared = SharedValues()
    first = access_claims(payload(aud="api", sub="1"), shared)
    second = access_claims(payload(aud="api", sub="2"), shared)
    assert first == access_claims(payload(aud="api", sub="1"))  # same claims as unshared
    assert second.claims["scope"] == "api read" and second.scopes == ("api", "read")
    for name in ("iss", "aud", "client_id", "scopes", "roles"):
        assert getattr(first, name) is getattr(second, name), name
    assert first.claims["scope"] is second.claims["scope"]
    assert first.claims["aud"] is second.claims["aud"] == "api"
    assert first.claims["roles"] is second.claims["roles"] == ("EDITOR", "VIEWER")


def test_roles_are_checked_when_other_roles_are_shared() -> None:
    shared = SharedValues()
    access_claims(payload(roles=["1"]), shared)
    with pytest.raises(InvalidClaim):
        access_claims(
            payload(roles=[1]), shared
        )  # a different tuple: checked, not taken from the table


def test_shared_values_are_bounded() -> None:
    shared = SharedValues(max_entries=3)
    for n in range(10):
        claims = access_claims(payload(client_id=f"c{n}", scope=f"s{n}", roles=[f"r{n}"]), shared)
        assert claims.client_id == f"c{n}" and claims.scopes == (f"s{n}",)
        assert claims.roles == (f"r{n}",)
        tables = (shared._strings, shared._scopes, shared._audiences, shared._roles)
        assert all(len(table) <= 3 for table in tables)
