"""Password hashing with argon2id (argon2-cffi's defaults, RFC 9106's second choice).

Checking a password costs ~50 ms and 64 MiB on purpose: the dashboard runs it in a worker
thread, and logins are throttled (ferrite.dashboard.throttle) before it is reached."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher()
MIN_LENGTH = 10
MAX_LENGTH = 1024
#: Verified when an email is unknown, so the answer takes as long as for a known one.
DUMMY_HASH = HASHER.hash("not a real password, only a timing decoy")


class WeakPassword(ValueError):
    pass


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"the password must have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_strength(password)
    return HASHER.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """True when `password` matches; a missing hash still costs one verification."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return HASHER.verify(stored or DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return HASHER.check_needs_rehash(stored)
