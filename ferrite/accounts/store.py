"""What the dashboard keeps, and the contract a storage plugin answers through the
`ferrite_account_store` hook.

Every secret (session ids, setup and share tokens) is stored as a SHA-256 only: they are
32 random bytes, so a fast hash is enough. Passwords people choose are argon2 hashes
(ferrite.accounts.passwords). Several nodes sharing one store share everything here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

Role = Literal["admin", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "viewer")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    role: Role
    #: The sites a viewer reads; admins read every site whatever this holds.
    sites: tuple[str, ...]
    created: datetime

    def can_read(self, site: str) -> bool:
        return self.role == "admin" or site in self.sites


@dataclass(frozen=True)
class Session:
    id_hash: str
    user_id: str
    created: datetime
    expires: datetime


@dataclass(frozen=True)
class Share:
    """A shared link: read-only access to one site's dashboard."""

    id: str
    site: str
    token_hash: str
    #: argon2 hash of the link's password, or None for a link without one.
    password_hash: str | None
    name: str
    created: datetime
    revoked: datetime | None = None


class AccountStore(Protocol):
    # users
    def add_user(self, user: User) -> None:
        """Raise ValueError when a user with that email exists."""
    def find_user(self, email: str) -> User | None: ...
    def user_by_id(self, user_id: str) -> User | None: ...
    def list_users(self) -> list[User]: ...
    def update_user(self, user: User) -> bool:
        """Replace the record with user.id; False when there is none."""
    def remove_user(self, user_id: str) -> bool:
        """Also removes the user's sessions."""
    def count_users(self) -> int: ...

    # login sessions
    def add_session(self, session: Session) -> None: ...
    def find_session(self, id_hash: str) -> Session | None: ...
    def remove_session(self, id_hash: str) -> None: ...
    def remove_sessions(self, user_id: str) -> int: ...
    def purge_sessions(self, now: datetime) -> int:
        """Forget expired sessions."""

    # the first-run setup token
    def add_setup_token(self, token_hash: str, expires: datetime) -> None: ...
    def setup_token_valid(self, token_hash: str, now: datetime) -> bool: ...
    def create_first_admin(self, token_hash: str, user: User, now: datetime) -> bool:
        """Atomically: when the token is valid and there is no user yet, add `user` and
        destroy every setup token; otherwise change nothing and return False."""

    # shared links
    def add_share(self, share: Share) -> None: ...
    def find_share(self, token_hash: str) -> Share | None: ...
    def list_shares(self, site: str | None = None) -> list[Share]: ...
    def revoke_share(self, share_id: str, site: str) -> bool: ...

    def secret(self, name: str) -> bytes:
        """A random 32-byte secret shared by every node, made on first use."""

    def close(self) -> None: ...
