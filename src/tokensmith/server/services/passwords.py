"""Password hashing with argon2id, off the event loop, at the same cost for unknown users.

    hasher = PasswordHasher()                     # argon2-cffi's RFC 9106 low-memory profile
    hasher.check_new_password(pw)                 # WeakPassword if the policy refuses it
    stored = await hasher.hash_async(pw)
    result = await hasher.verify_async(stored_or_None, pw)
    if result.ok and result.needs_rehash:
        stored = await hasher.hash_async(pw)      # parameters changed: upgrade on login

Passwords are NFKC-normalized before hashing and before verifying, so the same
password typed with a fullwidth or a compatibility character (an IME, another
keyboard layout) still matches; NIST SP 800-63B section 5.1.1.2 recommends it.
"""

from __future__ import annotations

import logging
import os
import secrets
import unicodedata
from dataclasses import dataclass

import anyio
import anyio.to_thread
import argon2
from argon2 import exceptions as argon2_errors
from argon2.profiles import RFC_9106_LOW_MEMORY

from tokensmith.errors import TokensmithError

__all__ = [
    "DEFAULT_PARAMETERS",
    "PasswordHasher",
    "PasswordPolicy",
    "VerifyResult",
    "WeakPassword",
    "check_new_password",
    "normalize_password",
]

logger = logging.getLogger(__name__)

#: argon2id, t=3, m=64 MiB, p=4: RFC 9106's second recommended option, which is also what
#: argon2-cffi's PasswordHasher() uses by default since 21.2. We name the profile instead of
#: taking the library default so that a dependency upgrade never changes the parameters (and
#: triggers a rehash of every user) silently: changing them is a reviewed edit here. The first
#: RFC option (2 GiB per hash) does not fit a small server hashing several logins at once.
DEFAULT_PARAMETERS: argon2.Parameters = RFC_9106_LOW_MEMORY


class WeakPassword(TokensmithError):
    """A new password does not meet the policy. The message never contains the password."""

    code = "weak_password"
    description = "The password does not meet the password policy."


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Rules for new passwords; lengths count code points after NFKC normalization.

    ``max_length`` bounds the work one request can ask for and applies to every password,
    old or new; ``min_length`` applies only to new ones, so raising it never locks out a
    user whose password predates the change.
    """

    min_length: int = 12
    max_length: int = 1024

    def __post_init__(self) -> None:
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError("need 1 <= min_length <= max_length")


DEFAULT_POLICY = PasswordPolicy()


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """``ok``: the password matches. ``needs_rehash``: it matched a hash made with other
    parameters, so the caller should store a fresh hash of the same password."""

    ok: bool
    needs_rehash: bool = False


def normalize_password(password: str) -> str:
    """The form that is hashed: NFKC, nothing else (no stripping, no case folding)."""
    return unicodedata.normalize("NFKC", password)


def _prepare(password: str, policy: PasswordPolicy) -> bytes:
    """The bytes to hash; WeakPassword if too long or not encodable (the cost bound).

    Length is checked before normalizing (so a megabyte is never normalized) and after
    (NFKC can expand one character to up to 18 code points).
    """
    if len(password) > policy.max_length or (
        len(normalized := normalize_password(password)) > policy.max_length
    ):
        raise WeakPassword(f"The password must be at most {policy.max_length} characters.")
    try:
        return normalized.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates, e.g. from a JSON "\ud800" escape
        raise WeakPassword("The password contains characters that cannot be encoded.") from None


def check_new_password(password: str, policy: PasswordPolicy = DEFAULT_POLICY) -> None:
    """Raise WeakPassword unless ``password`` may be set as a new password."""
    normalized = _prepare(password, policy).decode("utf-8")
    if len(normalized) < policy.min_length:
        raise WeakPassword(f"The password must be at least {policy.min_length} characters.")
    if not normalized.strip():
        raise WeakPassword("The password must not be only whitespace.")


def _default_concurrency() -> int:
    # The CPUs this process may run on (a container's cpuset), not the host's count.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class PasswordHasher:
    """argon2id hashing and verification with equal cost for unknown users.

    ``parameters`` or a ready ``engine`` (an ``argon2.PasswordHasher``, which tests replace
    with an instrumented one) choose the argon2 parameters. ``max_concurrency`` bounds the
    worker threads the async methods use (default: the CPUs available), so a burst of
    logins queues instead of starting a thread and 64 MiB of argon2 memory per request.
    """

    def __init__(
        self,
        parameters: argon2.Parameters | None = None,
        *,
        engine: argon2.PasswordHasher | None = None,
        policy: PasswordPolicy = DEFAULT_POLICY,
        max_concurrency: int | None = None,
    ) -> None:
        if parameters is not None and engine is not None:
            raise ValueError("give parameters or engine, not both")
        if engine is None:
            engine = argon2.PasswordHasher.from_parameters(parameters or DEFAULT_PARAMETERS)
        if max_concurrency is None:
            max_concurrency = _default_concurrency()
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._engine = engine
        self.policy = policy
        self.limiter = anyio.CapacityLimiter(max_concurrency)
        # Made with the same parameters as real hashes, so verifying an unknown user's
        # attempt against it costs what a wrong password costs. The password is random and
        # discarded: nothing can ever match it.
        self._dummy_hash = engine.hash(secrets.token_urlsafe(32))
        self.parameters: argon2.Parameters = argon2.extract_parameters(self._dummy_hash)

    def __repr__(self) -> str:
        p = self.parameters
        return (
            f"PasswordHasher(type={p.type.name}, t={p.time_cost}, m={p.memory_cost}, "
            f"p={p.parallelism}, max_concurrency={self.limiter.total_tokens})"
        )

    def check_new_password(self, password: str) -> None:
        """Raise WeakPassword unless the policy of this hasher accepts ``password``."""
        check_new_password(password, self.policy)

    def hash(self, password: str) -> str:
        """The argon2id hash of the normalized password (blocking: prefer ``hash_async``).

        Only the length bound is enforced here (so a rehash on login always works);
        callers setting a new password call ``check_new_password`` first.
        """
        return self._engine.hash(_prepare(password, self.policy))

    def verify(self, stored_hash: str | None, password: str) -> VerifyResult:
        """Check ``password`` against ``stored_hash`` (None: the user does not exist).

        Never raises for a wrong password, an unknown user or a malformed stored hash.
        An unknown user and a malformed hash cost one verification against the dummy
        hash, like a wrong password. An over-long or unencodable password is refused
        before any hashing, for known and unknown users alike: the shortcut depends only
        on what the client sent, so it tells the client nothing it did not know.
        """
        try:
            secret = _prepare(password, self.policy)
        except WeakPassword:
            return VerifyResult(ok=False)
        if stored_hash is None:
            self._burn(secret)
            return VerifyResult(ok=False)
        try:
            self._engine.verify(stored_hash, secret)
        except argon2_errors.VerifyMismatchError:
            return VerifyResult(ok=False)
        except (argon2_errors.VerificationError, argon2_errors.InvalidHashError, ValueError):
            # Corrupt row: log without the hash (offline-crackable) and spend the time a
            # real check takes, so a broken account does not answer faster than others.
            logger.warning("stored password hash is malformed; the login is refused")
            self._burn(secret)
            return VerifyResult(ok=False)
        try:
            needs_rehash = self._engine.check_needs_rehash(stored_hash)
        except (argon2_errors.InvalidHashError, ValueError):
            needs_rehash = True  # it verified but its parameters do not parse: replace it
        return VerifyResult(ok=True, needs_rehash=needs_rehash)

    def _burn(self, secret: bytes) -> None:
        try:
            self._engine.verify(self._dummy_hash, secret)
        except argon2_errors.VerificationError:
            pass

    async def hash_async(self, password: str) -> str:
        """``hash`` in a worker thread, at most ``max_concurrency`` at a time."""
        return await anyio.to_thread.run_sync(self.hash, password, limiter=self.limiter)

    async def verify_async(self, stored_hash: str | None, password: str) -> VerifyResult:
        """``verify`` in a worker thread, at most ``max_concurrency`` at a time."""
        return await anyio.to_thread.run_sync(
            self.verify, stored_hash, password, limiter=self.limiter
        )
