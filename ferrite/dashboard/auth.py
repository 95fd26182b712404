"""Who is asking: login sessions in signed cookies, CSRF tokens, shared-link access.

A session cookie carries a random id signed with the store's shared secret; the store keeps
only its SHA-256 with the user and the expiry, so logout, a password change or removing the
user ends it on every node. CSRF: a random HttpOnly SameSite=Strict cookie, and each form
carries an HMAC of it that only the server can make (a signed double-submit token); state-
changing requests must also come from our own origin when the browser says where from.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from itsdangerous import BadSignature, TimestampSigner

from ferrite.accounts.store import AccountStore, Session, Share, User, token_hash

SESSION_COOKIE = "ferrite_session"
CSRF_COOKIE = "ferrite_csrf"
SHARE_COOKIE = "ferrite_share"


@dataclass(frozen=True)
class Principal:
    """A logged-in user, or a visitor holding a shared link (read-only, one site)."""

    user: User | None = None
    share: Share | None = None
    session_hash: str | None = None

    @property
    def admin(self) -> bool:
        return self.user is not None and self.user.role == "admin"

    def can_read(self, site: str) -> bool:
        if self.user is not None:
            return self.user.can_read(site)
        return self.share is not None and self.share.site == site


class Keys:
    """Signing keys derived from the store's shared secret (the same on every node)."""

    def __init__(self, secret: bytes, session_seconds: float) -> None:
        self.secret = secret
        self.session_seconds = session_seconds
        self.sessions = TimestampSigner(secret, salt="ferrite.session")
        self.shares = TimestampSigner(secret, salt="ferrite.share")

    def csrf_token(self, cookie: str) -> str:
        return hmac.new(self.secret, b"csrf:" + cookie.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, cookie: str | None, sent: str | None) -> bool:
        if not cookie or not sent or len(cookie) > 200:
            return False
        return hmac.compare_digest(self.csrf_token(cookie), sent)

    # --- login sessions ---------------------------------------------------------------

    def start_session(self, store: AccountStore, user: User) -> tuple[str, datetime]:
        """A new session for `user`: (cookie value, expiry)."""
        raw = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=self.session_seconds)
        store.add_session(Session(token_hash(raw), user.id, now, expires))
        return self.sessions.sign(raw).decode(), expires

    def session_user(self, store: AccountStore, cookie: str | None) -> Principal | None:
        if not cookie or len(cookie) > 500:
            return None
        try:
            raw = self.sessions.unsign(cookie, max_age=int(self.session_seconds)).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
        session = store.find_session(token_hash(raw))
        if session is None or session.expires <= datetime.now(UTC):
            return None
        user = store.user_by_id(session.user_id)
        return Principal(user=user, session_hash=session.id_hash) if user else None

    # --- shared links with a password ---------------------------------------------------

    def share_pass(self, share: Share) -> str:
        """A cookie proving the link's password was given (valid while the link is)."""
        return self.shares.sign(share.id + ":" + _fingerprint(share)).decode()

    def share_pass_ok(self, share: Share, cookie: str | None) -> bool:
        if not cookie or len(cookie) > 500:
            return False
        try:
            value = self.shares.unsign(cookie, max_age=int(self.session_seconds)).decode()
        except (BadSignature, UnicodeDecodeError):
            return False
        return hmac.compare_digest(value, share.id + ":" + _fingerprint(share))


def _fingerprint(share: Share) -> str:
    return hashlib.sha256((share.password_hash or "").encode()).hexdigest()[:16]


def cookie_options(secure: bool, max_age: int | None = None, path: str = "/") -> dict[str, Any]:
    return {"httponly": True, "samesite": "Strict", "secure": secure, "max_age": max_age,
            "path": path}
