"""The token server's logic, free of HTTP types: password hashing and login throttling."""

from .passwords import (
    DEFAULT_PARAMETERS,
    PasswordHasher,
    PasswordPolicy,
    VerifyResult,
    WeakPassword,
    check_new_password,
    normalize_password,
)
from .throttle import (
    Decision,
    Scope,
    Throttle,
    ThrottleEvent,
    ThrottlePolicy,
    ThrottleReason,
    decide,
    delay_after,
    record_failure,
    record_success,
)
from .throttle_keys import address_key, subject_key
from .throttle_store import MemoryThrottleStore, ThrottleState, ThrottleStore

__all__ = [
    "DEFAULT_PARAMETERS",
    "Decision",
    "MemoryThrottleStore",
    "PasswordHasher",
    "PasswordPolicy",
    "Scope",
    "Throttle",
    "ThrottleEvent",
    "ThrottlePolicy",
    "ThrottleReason",
    "ThrottleState",
    "ThrottleStore",
    "VerifyResult",
    "WeakPassword",
    "address_key",
    "check_new_password",
    "decide",
    "delay_after",
    "normalize_password",
    "record_failure",
    "record_success",
    "subject_key",
]
