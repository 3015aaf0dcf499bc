"""All repositories over one session: ``repos = Repositories(session)``, then ``repos.users...``."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from .audit import AuditRepository
from .clients import ClientRepository
from .login_failures import LoginFailureRepository
from .refresh_tokens import RefreshTokenRepository
from .revocations import RevocationRepository
from .signing_keys import KeyRepository
from .users import UserRepository

__all__ = ["Repositories"]


class Repositories:
    """One of each repository, sharing the caller's session (and so its transaction)."""

    __slots__ = (
        "audit",
        "clients",
        "keys",
        "login_failures",
        "refresh_tokens",
        "revocations",
        "session",
        "users",
    )

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.users = UserRepository(session)
        self.clients = ClientRepository(session)
        self.keys = KeyRepository(session)
        self.refresh_tokens = RefreshTokenRepository(session)
        self.revocations = RevocationRepository(session)
        self.audit = AuditRepository(session)
        self.login_failures = LoginFailureRepository(session)
