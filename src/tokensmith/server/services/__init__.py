"""The token server's logic, free of HTTP types.

Passwords and login throttling, the master key and the signing key ring,
OAuth clients, and token issuing, rotation, revocation and introspection.
User management for the CLI and the admin API. Routes stay thin: parse, call one
service, render.
"""

from .audit_log import MAX_AUDIT_PAGE, AuditLog, AuditPage, audit_summary
from .audit_writer import AuditWriter
from .client_cache import ClientCache
from .client_rules import (
    GRANT_TYPES,
    ClientConfigError,
    check_grant_type,
    parse_scope,
    resolve_scope,
)
from .clients import ClientService, NewClient, client_summary, hash_client_secret
from .keyring import (
    HS256_KID,
    AlgorithmNotConfigured,
    KeyRing,
    KeyRingSettings,
    NoSigningKey,
    NotCurrentKey,
    SigningKeys,
    key_summary,
)
from .keyring_jobs import run_maintenance, run_reload
from .master_key import (
    InvalidKeyFile,
    MasterKeyFileError,
    MasterKeySettings,
    MissingKeyFile,
    UnsafeKeyFile,
    check_key_file_not_lost,
    load_or_create_master_key,
    path_missing,
)
from .oauth_errors import (
    InsufficientRole,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    MissingToken,
    OAuthError,
    SlowDown,
    TemporarilyUnavailable,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from .passwords import (
    DEFAULT_PARAMETERS,
    PasswordHasher,
    PasswordPolicy,
    VerifyResult,
    WeakPassword,
    check_new_password,
    normalize_password,
)
from .throttle import Attempt, Throttle, ThrottleEvent
from .throttle_db import DatabaseThrottleStore
from .throttle_keys import address_key, subject_key
from .throttle_policy import (
    Decision,
    Scope,
    ThrottlePolicy,
    ThrottleReason,
    decide,
    delay_after,
    record_failure,
    record_success,
)
from .throttle_store import (
    AtomicThrottleStore,
    MemoryThrottleStore,
    StateChange,
    ThrottleState,
    ThrottleStore,
)
from .tokens import TokenService, throttle_auditor
from .tokens_access import (
    TokenResponse,
    TokenSettings,
    derive_refresh_secret,
    verify_access_token,
)
from .users import (
    ADMIN_ROLE,
    InvalidUserData,
    UserPage,
    UserService,
    admin_audience,
    normalize_roles,
    user_summary,
)

__all__ = [
    "ADMIN_ROLE",
    "DEFAULT_PARAMETERS",
    "GRANT_TYPES",
    "HS256_KID",
    "MAX_AUDIT_PAGE",
    "AlgorithmNotConfigured",
    "AtomicThrottleStore",
    "Attempt",
    "AuditLog",
    "AuditPage",
    "AuditWriter",
    "ClientCache",
    "ClientConfigError",
    "ClientService",
    "DatabaseThrottleStore",
    "Decision",
    "InsufficientRole",
    "InvalidClient",
    "InvalidGrant",
    "InvalidKeyFile",
    "InvalidRequest",
    "InvalidScope",
    "InvalidToken",
    "InvalidUserData",
    "KeyRing",
    "KeyRingSettings",
    "MasterKeyFileError",
    "MasterKeySettings",
    "MemoryThrottleStore",
    "MissingKeyFile",
    "MissingToken",
    "NewClient",
    "NoSigningKey",
    "NotCurrentKey",
    "OAuthError",
    "PasswordHasher",
    "PasswordPolicy",
    "Scope",
    "SigningKeys",
    "SlowDown",
    "StateChange",
    "TemporarilyUnavailable",
    "Throttle",
    "ThrottleEvent",
    "ThrottlePolicy",
    "ThrottleReason",
    "ThrottleState",
    "ThrottleStore",
    "TokenResponse",
    "TokenService",
    "TokenSettings",
    "UnauthorizedClient",
    "UnsafeKeyFile",
    "UnsupportedGrantType",
    "UserPage",
    "UserService",
    "VerifyResult",
    "WeakPassword",
    "address_key",
    "admin_audience",
    "audit_summary",
    "check_grant_type",
    "check_key_file_not_lost",
    "check_new_password",
    "client_summary",
    "decide",
    "delay_after",
    "derive_refresh_secret",
    "hash_client_secret",
    "key_summary",
    "load_or_create_master_key",
    "normalize_password",
    "normalize_roles",
    "parse_scope",
    "path_missing",
    "record_failure",
    "record_success",
    "resolve_scope",
    "run_maintenance",
    "run_reload",
    "subject_key",
    "throttle_auditor",
    "user_summary",
    "verify_access_token",
]
