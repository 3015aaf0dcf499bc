"""Users: normalized unique usernames, hashes never shown, roles, profile and flags."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from conftest import NOW
from tokensmith.store import (
    Database,
    InvalidUsername,
    Repositories,
    UnknownUser,
    UsernameTaken,
    normalize_username,
)

from .helpers import PASSWORD_HASH, add_user

pytestmark = pytest.mark.anyio

FULLWIDTH_ALICE = "\uff21\uff4c\uff49\uff43\uff45"  # "Alice" in fullwidth letters


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("ALICE", "alice"),
        (FULLWIDTH_ALICE, "alice"),
        ("Stra\u00dfe", "strasse"),  # casefold, not lower: ß folds to ss
        ("\u212bngstr\u00f6m", "\u00e5ngstr\u00f6m"),  # Angstrom sign -> a with ring (NFKC)
        ("e\u0301mile", "\u00e9mile"),  # combining accent composes
        ("\ufb01sh", "fish"),  # the fi ligature
        ("jean luc", "jean luc"),  # inner spaces are kept
        ("\u0130stanbul", "i\u0307stanbul"),  # dotted capital I folds to i + combining dot
    ],
)
def test_normalize_username(raw: str, stored: str) -> None:
    assert normalize_username(raw) == stored
    # The stored form is a fixed point: normalizing it again changes nothing.
    assert normalize_username(stored) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        " alice",
        "alice ",
        "\talice",
        "al\x00ice",
        "al\nice",
        "al\x7fice",
        "al\u200bice",  # zero-width space (format character)
        "al\u202eice",  # right-to-left override
        "al\u2028ice",  # line separator
        "al\ud800ice",  # lone surrogate
        "al\ue000ice",  # private use
        "a" * 151,
    ],
)
def test_normalize_username_refuses(raw: str) -> None:
    with pytest.raises(InvalidUsername) as caught:
        normalize_username(raw)
    assert caught.value.code == "invalid_username"
    if raw.strip():
        assert raw not in str(caught.value)


def test_length_counts_the_normalized_form() -> None:
    assert normalize_username("a" * 150) == "a" * 150
    # 75 ligatures expand to 150 characters (fits); 76 would be 152.
    assert len(normalize_username("\ufb01" * 75)) == 150
    with pytest.raises(InvalidUsername):
        normalize_username("\ufb01" * 76)


def test_normalize_username_type() -> None:
    with pytest.raises(TypeError):
        normalize_username(b"alice")  # type: ignore[arg-type]


@pytest.mark.parametrize("other", ["ALICE", FULLWIDTH_ALICE, "alice"])
async def test_usernames_collide_after_normalization(db: Database, other: str) -> None:
    await add_user(db, "Alice")
    with pytest.raises(UsernameTaken):
        await add_user(db, other)


async def test_the_database_enforces_uniqueness_too(db: Database) -> None:
    # Two rows with one stored name are refused by the unique index, not only by the code.
    await add_user(db, "alice")
    with pytest.raises(IntegrityError):
        async with db.engine.begin() as connection:
            await connection.exec_driver_sql(
                "INSERT INTO users (username, password_hash, roles, disabled, profile,"
                " created_at, updated_at) VALUES ('alice', '$argon2id$x', '[]', 0, '{}', 1, 1)"
            )


async def test_add_and_get(db: Database) -> None:
    user = await add_user(db, "Alice", roles=("EDITOR", "ADMIN", "EDITOR"), profile={"name": "A"})
    assert user.username == "alice"
    assert user.roles == ("ADMIN", "EDITOR")
    assert user.profile == {"name": "A"}
    assert not user.disabled
    assert (user.created_at, user.updated_at) == (NOW, NOW)
    async with db.read() as session:
        users = Repositories(session).users
        assert await users.get(user.id) == user
        assert await users.get_by_username(FULLWIDTH_ALICE) == user
        assert await users.get_by_username("bob") is None
        # A name no user can have is simply not found (the login path treats both alike).
        assert await users.get_by_username("al\x00ice") is None
        assert await users.get(user.id + 1000) is None


async def test_setters_change_one_thing_and_the_update_time(db: Database) -> None:
    user = await add_user(db, "alice")
    later = NOW + 100
    new_hash = PASSWORD_HASH.replace("t=3", "t=4")
    async with db.transaction() as session:
        users = Repositories(session).users
        changed = await users.set_roles(user.id, ["ADMIN"], now=later)
        assert changed.roles == ("ADMIN",)
        changed = await users.set_disabled(user.id, True, now=later)
        assert changed.disabled
        changed = await users.set_password_hash(user.id, new_hash, now=later)
        assert changed.password_hash == new_hash
        changed = await users.set_profile(user.id, {"email": "a@example.org"}, now=later)
    assert changed.profile == {"email": "a@example.org"}
    assert (changed.created_at, changed.updated_at) == (NOW, later)
    assert (changed.username, changed.roles, changed.disabled) == ("alice", ("ADMIN",), True)


async def test_setters_on_a_missing_user(db: Database) -> None:
    async with db.transaction() as session:
        with pytest.raises(UnknownUser):
            await Repositories(session).users.set_disabled(999, True, now=NOW)


async def test_only_argon2_hashes_are_stored(db: Database) -> None:
    async with db.transaction() as session:
        users = Repositories(session).users
        with pytest.raises(ValueError, match="argon2"):
            await users.add("alice", "correct horse battery staple", now=NOW)
        user = await users.add("alice", PASSWORD_HASH, now=NOW)
        with pytest.raises(ValueError, match="argon2"):
            await users.set_password_hash(user.id, "hunter2", now=NOW)


async def test_profile_and_roles_are_checked(db: Database) -> None:
    async with db.transaction() as session:
        users = Repositories(session).users
        with pytest.raises(ValueError, match="unknown profile fields"):
            await users.add("alice", PASSWORD_HASH, now=NOW, profile={"phone": "1"})
        with pytest.raises(TypeError):
            await users.add("alice", PASSWORD_HASH, now=NOW, roles="ADMIN")
        with pytest.raises(ValueError):
            await users.add("alice", PASSWORD_HASH, now=NOW, roles=[""])
        with pytest.raises(TypeError):
            await users.add("alice", PASSWORD_HASH, now=float(NOW))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"roles": ["EDITOR", "A\udcff"]},  # an undecodable byte of a command-line argument
        {"profile": {"name": "Bob\ud800"}},  # an unpaired JSON escape
    ],
)
async def test_text_that_cannot_be_encoded_is_never_stored(
    db: Database, change: dict[str, object]
) -> None:
    # SQLite would store it, and every later answer showing it would fail to encode.
    async with db.transaction() as session:
        users = Repositories(session).users
        with pytest.raises(ValueError, match="lone surrogate"):
            await users.add("alice", PASSWORD_HASH, now=NOW, **change)  # type: ignore[arg-type]
        user = await users.add("bob", PASSWORD_HASH, now=NOW, profile={"name": "Bob 😀"})
        with pytest.raises(ValueError, match="lone surrogate"):
            await users.set_roles(user.id, ["A\udcff"], now=NOW)


async def test_repr_hides_the_password_hash(db: Database) -> None:
    user = await add_user(db)
    assert PASSWORD_HASH not in repr(user)
    assert "alice" in repr(user)


async def test_list_pages_by_username(db: Database) -> None:
    for name in ("carol", "Alice", "bob"):
        await add_user(db, name)
    async with db.read() as session:
        users = Repositories(session).users
        first = await users.list(limit=2)
        rest = await users.list(limit=2, after_username=first[-1].username)
    assert [u.username for u in first] == ["alice", "bob"]
    assert [u.username for u in rest] == ["carol"]


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ({"name": "G\x1b[31mred"}, "control"),  # a terminal escape, in every listing
        ({"name": "Gina\nAdmin"}, "control"),
        ({"name": "Gina\u2028Admin"}, "control"),  # a line separator
        ({"name": "\u202eanig"}, "bidirectional"),  # shown reversed
        ({"name": "\u200fmoc.elpmaxe@x"}, "bidirectional"),  # a right-to-left mark
        ({"name": "a\u200eb"}, "bidirectional"),  # a left-to-right mark
        ({"name": "a\u061cb"}, "bidirectional"),  # the Arabic letter mark
        ({"name": " Gina"}, "whitespace"),
        ({"email": "notanemail"}, "address"),
        ({"email": "gina@"}, "address"),
        ({"email": "@example.org"}, "address"),
        ({"email": "gina @example.org"}, "address"),
        ({"email": "gina@example..org"}, "address"),
        ({"email": "a@b@example.org"}, "address"),
        ({"email": "gina@-example.org"}, "address"),
        ({"email": "gina@example-.org"}, "address"),
        ({"email": "g" * 65 + "@example.org"}, "address"),
    ],
)
async def test_profile_values_are_display_text_and_an_email_address(
    db: Database, profile: dict[str, str], message: str
) -> None:
    async with db.transaction() as session:
        users = Repositories(session).users
        with pytest.raises(ValueError, match=message):
            await users.add("gina", PASSWORD_HASH, now=NOW, profile=profile)
        user = await users.add("hank", PASSWORD_HASH, now=NOW)
        with pytest.raises(ValueError, match=message):
            await users.set_profile(user.id, profile, now=NOW)


@pytest.mark.parametrize(
    "profile",
    [
        {"name": "Gina Müller-Lüdenscheidt", "email": "gina@example.org"},
        {"name": "\u0645\u06cc\u200c\u0646\u0627"},  # Persian with a zero-width non-joiner
        {"name": "Ana 😀", "email": "\u00f1and\u00fa@b\u00fccher.example"},  # Unicode address
        {"email": "root@localhost"},
        {"email": '"odd@local"@example.org'},  # a quoted local part may hold an @
    ],
)
async def test_real_names_and_addresses_are_kept(db: Database, profile: dict[str, str]) -> None:
    async with db.transaction() as session:
        user = await Repositories(session).users.add(
            "gina", PASSWORD_HASH, now=NOW, profile=profile
        )
    assert user.profile == profile
