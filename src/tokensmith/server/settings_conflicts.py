"""Checks of settings that must agree with each other, run once every field is valid.

Kept apart from the model so the model stays a list of fields. A problem names
every setting involved: the operator may fix any one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .settings_checks import Problem, format_duration, is_local_host

if TYPE_CHECKING:
    # Only for the annotation: the model imports this module to run the checks, so
    # a runtime import would be a cycle (and env_name, which reads the model, is
    # passed in for the same reason).
    from .settings_model import Settings

__all__ = ["cross_field_problems"]


def cross_field_problems(settings: Settings, env_name: Callable[[str], str]) -> list[Problem]:
    """Checks that involve more than one setting; each problem names all of them.

    ``env_name`` maps a setting to its environment variable, for advice that names one.
    """
    s = settings
    problems: list[Problem] = []
    host = urlsplit(s.issuer).hostname or ""
    if s.issuer.startswith("http://") and not is_local_host(host) and not s.allow_insecure_issuer:
        problems.append(
            Problem(
                ("issuer", "allow_insecure_issuer"),
                f"http issuer on the non-local host {host!r}: use https, or set "
                f"{env_name('allow_insecure_issuer')}=true for a test deployment",
            )
        )
    if s.key_prepublish >= s.rotation_period:
        problems.append(
            Problem(
                ("key_prepublish", "rotation_period"),
                f"key_prepublish ({format_duration(s.key_prepublish)}) must be shorter than "
                f"rotation_period ({format_duration(s.rotation_period)})",
            )
        )
    if s.jwks_max_age >= s.key_prepublish:
        problems.append(
            Problem(
                ("jwks_max_age", "key_prepublish"),
                f"jwks_max_age ({format_duration(s.jwks_max_age)}) must be shorter than "
                f"key_prepublish ({format_duration(s.key_prepublish)}): verifiers would cache "
                "a JWKS without the next key past the moment it starts signing",
            )
        )
    if s.refresh_token_idle_lifetime > s.refresh_token_absolute_lifetime:
        problems.append(
            Problem(
                ("refresh_token_idle_lifetime", "refresh_token_absolute_lifetime"),
                "the idle lifetime must not exceed the absolute lifetime",
            )
        )
    if "HS256" in s.signing_algorithms and s.hs256_secret is None:
        problems.append(Problem(("signing_algorithms", "hs256_secret"), "HS256 needs hs256_secret"))
    if s.hs256_secret is not None and "HS256" not in s.signing_algorithms:
        # An unused secret is almost always a forgotten half of a configuration change.
        problems.append(
            Problem(
                ("hs256_secret", "signing_algorithms"),
                "hs256_secret is set but HS256 is not in signing_algorithms",
            )
        )
    if s.login_free_failures >= s.login_lock_threshold:
        problems.append(
            Problem(
                ("login_free_failures", "login_lock_threshold"),
                "login_free_failures must be below login_lock_threshold",
            )
        )
    if s.login_ip_threshold < s.login_lock_threshold:
        # Otherwise the per-address lock always fires first, and an attacker's failures
        # from one address lock out every user behind it before the per-user count matters.
        problems.append(
            Problem(
                ("login_ip_threshold", "login_lock_threshold"),
                "login_ip_threshold must be at least login_lock_threshold",
            )
        )
    return problems
