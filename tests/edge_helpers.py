"""Helpers for edge tests: an app under the Quart test client, and a real `ferrite serve`."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ferrite import load_config
from ferrite.edge.app import create_app
from ferrite.testing import DESKTOP_CHROME

CHROME = {"User-Agent": DESKTOP_CHROME}
VISITOR = {"client": ("203.0.113.7", 5555)}


def edge_config(db: Path, edge: dict[str, Any] | None = None, **plugins: dict) -> dict:
    return {
        "pipeline": {"plugins": ["client_ip", "useragent", "bots", "session", "referrer",
                                 "sqlite"], "spool_dir": str(db.parent / "spool"),
                     "retry_initial_seconds": 0.01},
        "plugins": {"sqlite": {"path": str(db)}, **plugins},
        "edge": edge or {},
    }


def stored(db: Path, sql: str = "SELECT * FROM events ORDER BY ts, id") -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


@dataclass
class TestEdge:
    client: Any
    app: Any
    db: Path

    async def get(self, path: str, headers: dict | None = None, client=VISITOR, **kw: Any):
        return await self.client.get(path, headers={**CHROME, **(headers or {})},
                                     scope_base=client, **kw)

    async def post(self, path: str = "/api/event", headers: dict | None = None,
                   client=VISITOR, **kw: Any):
        return await self.client.post(path, headers={**CHROME, **(headers or {})},
                                      scope_base=client, **kw)

    def metric(self, name: str, **labels: str) -> float:
        return self.app.extensions["ferrite"]["pipeline"].metrics.get(name, **labels)


@contextlib.asynccontextmanager
async def open_edge(tmp_path: Path, edge: dict | None = None, **plugins: dict
                    ) -> AsyncIterator[TestEdge]:
    db = tmp_path / "ferrite.db"
    app = create_app(load_config(data=edge_config(db, edge, **plugins)))
    async with app.test_app() as test_app:
        yield TestEdge(test_app.test_client(), app, db)


@dataclass
class Server:
    process: subprocess.Popen
    url: str
    output: list[str]

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `sig` (None: it was sent already), wait for the exit, return its code."""
        if sig is not None and self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        self.output.extend(self.process.stdout.read().splitlines())
        return code


@contextlib.contextmanager
def ferrite_serve(cwd: Path, *args: str, config: str | None = None,
                  env: dict | None = None, fake_time: str | None = None) -> Iterator[Server]:
    """Run `ferrite serve --bind 127.0.0.1:0 ...` in `cwd`; yield once it listens.

    `fake_time` ("2026-03-10 23:59:58") starts the server's clock there, through
    libfaketime, so a test can watch a real server cross midnight.
    """
    if config is not None:
        (cwd / "ferrite.toml").write_text(config)
    command = [sys.executable, "-m", "ferrite", "serve", "--bind", "127.0.0.1:0", *args]
    if fake_time is not None:
        # LD_PRELOAD directly: the `faketime` wrapper would stand between us and the
        # server's signals.
        (library,) = glob.glob("/usr/lib/*/faketime/libfaketime.so.1")
        env = {"TZ": "UTC", "LD_PRELOAD": library, "FAKETIME": f"@{fake_time}", **(env or {})}
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    output: list[str] = []
    deadline = time.monotonic() + 60
    url = None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output.append(line.rstrip("\n"))
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            url = match.group(1)
            break
    if url is None:
        process.kill()
        raise RuntimeError("ferrite serve did not start:\n" + "\n".join(output))
    server = Server(process, url, output)
    try:
        yield server
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # workers too, or they hold stdout
                os.killpg(process.pid, signal.SIGKILL)
            server.stop(None)


def assert_private(folder: Path, ip: str, user_agent: str, output: list[str] = ()) -> None:
    """Neither the client's IP nor its user agent in any file under `folder` (database,
    WAL, spool, jsonl) nor in the server's output."""
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix not in (".toml", ".py", ".log"):
            data = path.read_bytes()
            assert ip.encode() not in data, f"{ip} in {path}"
            assert user_agent.encode() not in data, f"the user agent in {path}"
    assert user_agent not in "\n".join(output)
