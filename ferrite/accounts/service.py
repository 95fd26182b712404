"""Account operations shared by `ferrite users` and the dashboard: the checks live here
once, so the command line and the browser refuse the same things the same way."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta

from ferrite.accounts import passwords
from ferrite.accounts.store import ROLES, AccountStore, Role, Share, User, token_hash
from ferrite.core.config import Config
from ferrite.core.errors import FerriteError
from ferrite.core.manager import Plugins
from ferrite.core.urls import site_name

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


class AccountError(FerriteError):
    """A request the operator or user can correct; the message says how."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class NoAccountStore(FerriteError):
    pass


def open_accounts(config: Config) -> AccountStore:
    store = Plugins(config).hook.ferrite_account_store()
    if store is None:
        raise NoAccountStore("no plugin in [pipeline] plugins keeps dashboard accounts (the "
                             "ferrite_account_store hook); add a storage plugin such as "
                             "'sqlite'")
    return store


def check_email(email: str) -> str:
    email = email.strip()
    if not EMAIL.match(email):
        raise AccountError(f"{email!r} is not an email address", "email")
    return email


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)} (got {role!r})", "role")
    return role  # type: ignore[return-value]


def check_sites(sites: list[str], known: list[str] | None = None) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(site_name(s) for s in sites if s.strip()))
    for name in names:
        if "/" in name or " " in name or ":" in name:
            raise AccountError(f"{name!r} is not a site domain (such as example.com)", "sites")
    if known:
        unknown = [n for n in names if n not in known]
        if unknown:
            raise AccountError(f"unknown site {', '.join(unknown)}; known sites: "
                               f"{', '.join(known)}", "sites")
    return names


def new_user(email: str, password: str, role: str = "viewer",
             sites: list[str] | tuple[str, ...] = ()) -> User:
    try:
        hashed = passwords.hash_password(password)
    except passwords.WeakPassword as exc:
        raise AccountError(str(exc), "password") from None
    return User(id=secrets.token_hex(8), email=check_email(email), password_hash=hashed,
                role=check_role(role), sites=check_sites(list(sites)),
                created=datetime.now(UTC).replace(microsecond=0))


def add_user(store: AccountStore, email: str, password: str, role: str = "viewer",
             sites: list[str] | tuple[str, ...] = ()) -> User:
    user = new_user(email, password, role, sites)
    try:
        store.add_user(user)
    except ValueError as exc:
        raise AccountError(str(exc), "email") from None
    return user


def set_password(store: AccountStore, user: User, password: str) -> User:
    """New password; every session of the user ends (a changed password is the answer to
    a stolen one)."""
    try:
        hashed = passwords.hash_password(password)
    except passwords.WeakPassword as exc:
        raise AccountError(str(exc), "password") from None
    updated = User(**{**user.__dict__, "password_hash": hashed})
    store.update_user(updated)
    store.remove_sessions(user.id)
    return updated


def setup_token(store: AccountStore, ttl: timedelta, now: datetime | None = None) -> str | None:
    """A one-time token that creates the first admin in the browser, or None when a user
    exists. Each start makes a new one; any of them dies when the admin is created."""
    if store.count_users():
        return None
    token = secrets.token_urlsafe(32)
    store.add_setup_token(token_hash(token), (now or datetime.now(UTC)) + ttl)
    return token


def create_share(store: AccountStore, site: str, name: str = "",
                 password: str | None = None) -> tuple[str, Share]:
    hashed = None
    if password:
        try:
            hashed = passwords.hash_password(password)
        except passwords.WeakPassword as exc:
            raise AccountError(str(exc), "password") from None
    token = secrets.token_urlsafe(24)
    share = Share(id=secrets.token_hex(6), site=site_name(site), token_hash=token_hash(token),
                  password_hash=hashed, name=name.strip()[:200],
                  created=datetime.now(UTC).replace(microsecond=0))
    store.add_share(share)
    return token, share
