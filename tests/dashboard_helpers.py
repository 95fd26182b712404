"""A real dashboard app (real SQLite file, Quart's test client: no mocks) with an admin, a
viewer of one site and a shared link, for the route and unit tests."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ferrite import load_config
from ferrite.accounts import service
from ferrite.edge.app import create_app
from ferrite.plugins.sqlite_accounts import SqliteAccounts

from .stats_helpers import event, write

PASSWORD = "a-long-password"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Dash:
    app: Any
    test_app: Any
    store: SqliteAccounts
    share_token: str = ""
    share_id: str = ""
    other_share_token: str = ""
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self) -> Any:
        return self.test_app.test_client()


async def csrf_of(client: Any, path: str = "/login") -> str:
    response = await client.get(path)
    match = CSRF.search(await response.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match[1]


async def log_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    token = await csrf_of(client)
    return await client.post("/login", form={"email": email, "password": password,
                                             "csrf": token})


@asynccontextmanager
async def dashboard(tmp_path: Path, events: list | None = None, **tables: Any):
    db = tmp_path / "ferrite.db"
    write(db, events if events is not None else [
        event("2026-03-01T10:00:00Z", "s1", "/", site="a.example"),
        event("2026-03-01T10:00:00Z", "s2", "/", site="b.example")])
    data = {"plugins": {"sqlite": {"path": str(db)}},
            "sites": {"a.example": {}, "b.example": {}}, **tables}
    app = create_app(load_config(data=data))
    store = SqliteAccounts(str(db))
    service.add_user(store, "admin@example.com", PASSWORD, "admin")
    service.add_user(store, "viewer@example.com", PASSWORD, "viewer", ["a.example"])
    token, share = service.create_share(store, "a.example", "team")
    other, _ = service.create_share(store, "b.example", "other")
    async with app.test_app() as test_app:
        yield Dash(app, test_app, store, token, share.id, other)
