"""Value checks behind the settings model: durations, secrets, URLs, lists of names.

Plain functions over single values, so each rule is tested on its own and the
model in ``settings_model.py`` only says which rule applies to which setting.
Every message names the problem and never the value of a secret.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import GetCoreSchemaHandler, SecretStr
from pydantic_core import core_schema

from tokensmith.keys import MasterKey

__all__ = [
    "DAY",
    "HOUR",
    "Duration",
    "Problem",
    "check_algorithms",
    "check_database_url",
    "check_hs256_secret",
    "check_master_key",
    "check_proxies",
    "check_secret_text",
    "format_duration",
    "is_local_host",
    "lower_text",
    "normalize_issuer",
    "parse_duration",
    "reject_blank",
    "split_commas",
]

HOUR = 3600
DAY = 86_400


@dataclass(frozen=True, slots=True)
class Problem:
    """One refused setting (or several that conflict): their field names and what is wrong."""

    names: tuple[str, ...]
    message: str


# -- durations -----------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": HOUR, "d": DAY}


def format_duration(seconds: int) -> str:
    """The largest unit that divides ``seconds`` exactly: 2592000 -> ``30d``, 90 -> ``90s``."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_duration(value: object) -> int:
    # bool is an int subclass; `true` as a lifetime is a typo, not one second.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        unit = text[-1:] if text[-1:] in _UNITS else ""
        number = text[: len(text) - len(unit)]
        if number.isascii() and number.isdigit() and len(number) <= 12:
            return int(number) * _UNITS.get(unit, 1)
        shown = value if len(value) <= 20 else value[:20] + "..."
        raise ValueError(f"{shown!r} is not a duration: use seconds, or 90s, 15m, 12h, 30d")
    raise ValueError("must be a whole number of seconds, or a string like 15m, 12h or 30d")


@dataclass(frozen=True, slots=True)
class Duration:
    """A duration setting: whole seconds in [minimum, maximum], given as 90 or 15m-style text."""

    minimum: int
    maximum: int

    def check(self, seconds: int) -> int:
        if not self.minimum <= seconds <= self.maximum:
            low, high = format_duration(self.minimum), format_duration(self.maximum)
            raise ValueError(f"must be between {low} and {high}, not {format_duration(seconds)}")
        return seconds

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        parsed = core_schema.no_info_before_validator_function(
            parse_duration, core_schema.int_schema(strict=True)
        )
        return core_schema.no_info_after_validator_function(self.check, parsed)


# -- secrets and the issuer ----------------------------------------------------------

# Substrings of well-known placeholders. Long enough (>= 5 letters) that a random
# secret contains one by chance with negligible probability.
_PLACEHOLDER_WORDS = (
    "changeme",
    "replaceme",
    "secret",
    "password",
    "placeholder",
    "example",
    "default",
    "dummy",
    "insecure",
)
_MIN_DISTINCT = 8


def check_secret_text(text: str) -> None:
    """Refuse an empty, placeholder or low-variety secret; the message never shows it."""
    if not text.strip():
        raise ValueError("must not be empty (unset it instead)")
    # Separators folded away: change_me, Change-Me and "change me" are one placeholder.
    folded = "".join(char for char in text.lower() if char.isalnum())
    if any(word in folded for word in _PLACEHOLDER_WORDS):
        raise ValueError(
            "looks like a placeholder, not a randomly generated value (value not shown)"
        )
    # "xxxxxxxx...", "abababab...": a random secret of this length has far more variety.
    if len(set(text)) < _MIN_DISTINCT:
        raise ValueError("has too few distinct characters to be random (value not shown)")


_LOCAL_HOSTS = frozenset({"localhost"})


def is_local_host(host: str) -> bool:
    """localhost or a loopback address (127.0.0.0/8, ::1)."""
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalize_issuer(value: str) -> str:
    """Check an issuer URL and return it with a lower-case scheme and host, no trailing slash."""
    if not value.isascii() or not value.isprintable() or " " in value:
        raise ValueError("must be an ASCII URL without spaces")
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError("must start with https:// (or http:// on localhost)")
    # RFC 8414 section 2: the issuer has no query and no fragment.
    if "?" in value or "#" in value:
        raise ValueError("must have no query or fragment")
    if "@" in parts.netloc:
        raise ValueError("must not contain a user name or password")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise ValueError("has an invalid port") from None
    if not parts.hostname:
        raise ValueError("must name a host")
    return urlunsplit((scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def check_database_url(value: SecretStr | None) -> SecretStr | None:
    """Refuse a database URL without a dialect+driver:// scheme."""
    if value is not None:
        scheme, sep, rest = value.get_secret_value().partition("://")
        if not sep or not rest or not scheme.replace("+", "").isalnum():
            # The URL may carry a password: say what is wrong, never what it is.
            raise ValueError("must be a URL like dialect+driver://... (value not shown)")
    return value


def check_master_key(value: SecretStr | None) -> SecretStr | None:
    """Refuse a master key that is a placeholder or not base64url of 32 bytes."""
    if value is not None:
        text = value.get_secret_value()
        check_secret_text(text)
        try:
            MasterKey.from_text(text)
        except ValueError as exc:
            raise ValueError(f"{exc} (value not shown)") from None
    return value


def check_hs256_secret(value: SecretStr | None) -> SecretStr | None:
    """Refuse an HS256 secret that is a placeholder or shorter than 32 bytes."""
    if value is not None:
        text = value.get_secret_value()
        check_secret_text(text)
        if len(text.encode("utf-8")) < 32:
            raise ValueError("must be at least 32 bytes of random data (value not shown)")
    return value


# -- text and lists ------------------------------------------------------------------


def reject_blank(value: object) -> object:
    """Refuse empty or blank text before it becomes a path."""
    # An empty path would quietly mean the current directory.
    if isinstance(value, str) and not value.strip():
        raise ValueError("must not be empty")
    return value


def lower_text(value: object) -> object:
    """Text without surrounding blanks, in lower case; anything else unchanged."""
    return value.strip().lower() if isinstance(value, str) else value


def split_commas(value: object) -> object:
    """Text split at commas into its non-blank items; a list unchanged."""
    # Comma-separated in the environment; a list in a TOML file.
    if isinstance(value, str):
        value = [item.strip() for item in value.split(",") if item.strip()]
    return value


def check_algorithms(value: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse an empty list of algorithms or one naming an algorithm twice."""
    if not value:
        raise ValueError("must name at least one algorithm")
    if len(set(value)) != len(value):
        raise ValueError("names an algorithm twice")
    return value


def check_proxies(value: tuple[str, ...]) -> tuple[str, ...]:
    """Refuse a trusted proxy that is not an IP address or network."""
    for item in value:
        # "*" (uvicorn's "trust everyone") would let any client pick its address.
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(
                f"{item!r} is not an IP address or network (CIDR); '*' is not accepted"
            ) from None
    return value
