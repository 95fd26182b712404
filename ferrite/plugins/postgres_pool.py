"""A small connection pool opened on first use, for the read side's stores (stats,
accounts): a node whose database is down still starts, and each call that cannot reach
it raises StoreUnavailable (answered 503) with the password masked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ferrite.core.errors import StoreUnavailable


class LazyPool:
    def __init__(self, url: str, shown: str, size: int = 2, timeout: float = 10,
                 name: str = "ferrite") -> None:
        self.url = url
        self.shown = shown
        self.size = size
        self.timeout = timeout
        self.name = name
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()

    def _open(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                # checked before each use: after a server restart the idle connections
                # are dead, and a read should not fail for that
                self._pool = ConnectionPool(
                    self.url, min_size=1, max_size=self.size, open=False, name=self.name,
                    kwargs={"connect_timeout": max(1, int(self.timeout))},
                    check=ConnectionPool.check_connection)
                self._pool.open(wait=False)
            return self._pool

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection (not in autocommit: use its transaction()); errors that mean the
        server is gone become StoreUnavailable."""
        try:
            with self._open().connection(timeout=self.timeout) as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            if isinstance(exc, psycopg.errors.QueryCanceled):
                raise
            raise StoreUnavailable(f"{self.shown} is unavailable: "
                                   f"{type(exc).__name__}") from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
