"""Stats API keys: shown once, stored as a SHA-256 only.

A key is 32 random bytes, so a fast hash is enough: there is nothing to brute-force that a
slow password hash would protect (argon2 is for the passwords people choose).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from ferrite.core.urls import site_name
from ferrite.stats.store import KeyRecord, StatsStore

PREFIX = "fer_"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create(store: StatsStore, sites: list[str], name: str = "") -> tuple[str, KeyRecord]:
    """A new key for `sites`: returns (the key, to show once; what is stored)."""
    key = PREFIX + secrets.token_urlsafe(32)
    record = KeyRecord(id=secrets.token_hex(4), name=name, key_hash=key_hash(key),
                       sites=tuple(dict.fromkeys(site_name(s) for s in sites)),
                       created=datetime.now(UTC))
    store.add_key(record)
    return key, record


def lookup(store: StatsStore, key: str) -> KeyRecord | None:
    """The live record of a presented key, or None (unknown or revoked)."""
    if not key.startswith(PREFIX) or len(key) > 200:
        return None
    record = store.find_key(key_hash(key))
    return record if record is not None and record.revoked is None else None
