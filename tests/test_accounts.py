"""Accounts: argon2 passwords, the SQLite account store, the setup token, `ferrite users`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from ferrite import load_config
from ferrite.accounts import passwords, service
from ferrite.accounts.store import Session, token_hash
from ferrite.core.manager import Plugins
from ferrite.plugins.sqlite_accounts import SqliteAccounts

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def reopen(request, tmp_path):
    """Opens the account store of a backend (again: a second node's view)."""
    if request.param == "sqlite":
        yield lambda: SqliteAccounts(str(tmp_path / "ferrite.db"))
        return
    from ferrite.plugins.postgres_accounts import PostgresAccounts

    from .postgres_helpers import fresh_database

    opened = []
    with fresh_database() as url:
        def open_store() -> PostgresAccounts:
            opened.append(PostgresAccounts(url))
            return opened[-1]
        yield open_store
        for store in opened:
            store.close()


@pytest.fixture
def store(reopen):
    return reopen()


def test_passwords_are_argon2id_and_verify():
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "correct horse battery")
    assert not passwords.verify(hashed, "correct horse batterz")
    assert not passwords.verify(None, "correct horse battery")  # unknown user: still False
    assert not passwords.verify("not a hash", "x")
    assert not passwords.verify(hashed, "x" * 5000)
    assert passwords.hash_password("correct horse battery") != hashed  # salted


@pytest.mark.parametrize("bad", ["short", "x" * 1025])
def test_weak_passwords_are_refused(bad):
    with pytest.raises(service.AccountError, match="password must have"):
        service.new_user("a@b.example", bad)


def test_users_round_trip(store):
    user = service.add_user(store, "Ann@Example.com", "a-long-password", "viewer",
                            ["www.Ex.com", "ex.com", "b.example"])
    assert user.sites == ("ex.com", "b.example")
    assert store.find_user("ann@example.com") == user  # emails match without case
    assert store.user_by_id(user.id) == user
    with pytest.raises(service.AccountError, match="exists"):
        service.add_user(store, "ANN@example.com", "another-long-one")
    assert user.can_read("ex.com") and not user.can_read("c.example")
    admin = service.add_user(store, "root@example.com", "a-long-password", "admin")
    assert admin.can_read("anything.example")
    assert [u.email for u in store.list_users()] == ["Ann@Example.com", "root@example.com"]
    assert store.count_users() == 2
    assert store.remove_user(user.id) and store.find_user("ann@example.com") is None


@pytest.mark.parametrize(("email", "role", "sites", "field"), [
    ("not-an-email", "viewer", ["ex.com"], "email"),
    ("a@b.example", "owner", ["ex.com"], "role"),
    ("a@b.example", "viewer", ["https://ex.com/"], "sites"),
])
def test_bad_user_fields_are_named(email, role, sites, field):
    with pytest.raises(service.AccountError) as info:
        service.new_user(email, "a-long-password", role, sites)
    assert info.value.field == field


def test_sessions_end_on_password_change_and_removal(store):
    user = service.add_user(store, "a@b.example", "a-long-password")
    store.add_session(Session("h1", user.id, NOW, NOW + timedelta(hours=1)))
    store.add_session(Session("h2", user.id, NOW, NOW - timedelta(hours=1)))
    assert store.find_session("h1").user_id == user.id
    assert store.purge_sessions(NOW) == 1 and store.find_session("h2") is None
    updated = service.set_password(store, user, "a-new-long-password")
    assert store.find_session("h1") is None
    assert passwords.verify(store.find_user("a@b.example").password_hash, "a-new-long-password")
    assert updated.password_hash != user.password_hash


def test_setup_token_creates_one_admin_once(store):
    token = service.setup_token(store, timedelta(hours=1), NOW)
    digest = token_hash(token)
    assert store.setup_token_valid(digest, NOW)
    assert not store.setup_token_valid(digest, NOW + timedelta(hours=2))  # expired
    assert not store.setup_token_valid(token_hash("guess"), NOW)
    first = service.new_user("first@example.com", "a-long-password", "admin")
    second = service.new_user("second@example.com", "a-long-password", "admin")
    results = []
    threads = [threading.Thread(target=lambda u=u: results.append(
        store.create_first_admin(digest, u, NOW))) for u in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]  # two browsers racing: one admin
    assert store.count_users() == 1
    assert not store.setup_token_valid(digest, NOW)  # the link is dead
    assert service.setup_token(store, timedelta(hours=1), NOW) is None  # no new link


def test_setup_token_expired_creates_nothing(store):
    token = service.setup_token(store, timedelta(minutes=5), NOW)
    user = service.new_user("late@example.com", "a-long-password", "admin")
    assert not store.create_first_admin(token_hash(token), user, NOW + timedelta(minutes=6))
    assert store.count_users() == 0


def test_two_nodes_racing_on_the_setup_link_make_one_admin(store, reopen):
    """Two browsers answered by different nodes (stores of their own) at once."""
    from concurrent.futures import ThreadPoolExecutor

    token = service.setup_token(store, timedelta(hours=1), NOW)
    nodes = [reopen() for _ in range(6)]
    users = [service.new_user(f"admin{i}@example.com", "a-long-password", "admin")
             for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        made = list(pool.map(lambda n: nodes[n].create_first_admin(
            token_hash(token), users[n], NOW), range(6)))
    assert made.count(True) == 1
    assert store.count_users() == 1


def test_shares_and_secrets(store, reopen):
    token, share = service.create_share(store, "www.Ex.com", "for the team", "share-password")
    assert share.site == "ex.com" and share.password_hash.startswith("$argon2id$")
    assert store.find_share(token_hash(token)) == share
    assert store.find_share(token) is None  # only the hash is stored
    assert not store.revoke_share(share.id, "other.example")  # only its own site's admin
    assert store.revoke_share(share.id, "ex.com")
    assert store.find_share(token_hash(token)).revoked is not None
    assert [s.id for s in store.list_shares("ex.com")] == [share.id]
    assert store.list_shares("other.example") == []
    secret = store.secret("dashboard")
    assert len(secret) == 32
    assert reopen().secret("dashboard") == secret


def test_hook_ferrite_account_store(tmp_path):
    config = load_config(data={"plugins": {"sqlite": {"path": str(tmp_path / "a.db")}}})
    store = Plugins(config).hook.ferrite_account_store()
    assert isinstance(store, SqliteAccounts)
    service.add_user(store, "a@b.example", "a-long-password", "admin")
    assert store.count_users() == 1
    config = load_config(data={"pipeline": {"plugins": ["console"]}})
    assert Plugins(config).hook.ferrite_account_store() is None


def ferrite(tmp_path, *args, stdin=""):
    return subprocess.run([sys.executable, "-m", "ferrite", *args], cwd=tmp_path, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_users_command(tmp_path):
    (tmp_path / "ferrite.toml").write_text('[sites."ex.com"]\n[sites."b.example"]\n')
    out = ferrite(tmp_path, "users", "add", "root@example.com", "--role", "admin",
                  "--password-stdin", stdin="a-long-password\n")
    assert out.returncode == 0 and "added admin root@example.com" in out.stdout
    out = ferrite(tmp_path, "users", "add", "v@example.com", "--site", "ex.com",
                  "--password-stdin", stdin="a-long-password\n")
    assert out.returncode == 0, out.stderr
    out = ferrite(tmp_path, "users", "add", "w@example.com", "--site", "nope.example",
                  "--password-stdin", stdin="a-long-password\n")
    assert out.returncode == 1 and "unknown site nope.example; known sites: ex.com, " \
        "b.example" in out.stderr
    out = ferrite(tmp_path, "users", "add", "w@example.com", "--password-stdin",
                  stdin="a-long-password\n")
    assert "a viewer needs at least one --site" in out.stderr
    out = ferrite(tmp_path, "users", "add", "w@example.com", "--site", "ex.com")
    assert out.returncode == 1 and "--password-stdin" in out.stderr  # no terminal to ask on
    listed = json.loads(ferrite(tmp_path, "users", "list", "--json").stdout)
    assert ferrite(tmp_path, "users", "edit", "root@example.com").returncode == 0
    assert [(u["email"], u["role"], u["sites"]) for u in listed] == [
        ("root@example.com", "admin", []), ("v@example.com", "viewer", ["ex.com"])]
    out = ferrite(tmp_path, "users", "edit", "v@example.com", "--site", "b.example",
                  "--site", "ex.com")
    assert out.returncode == 0 and "viewer of b.example, ex.com" in out.stdout
    assert ferrite(tmp_path, "users", "edit", "v@example.com", "--site", "x.example"
                   ).returncode == 1  # not a [sites] site
    out = ferrite(tmp_path, "users", "passwd", "v@example.com", "--password-stdin",
                  stdin="another-long-password\n")
    assert out.returncode == 0 and "sessions ended" in out.stdout
    store = SqliteAccounts(str(tmp_path / "ferrite.db"))
    assert passwords.verify(store.find_user("v@example.com").password_hash,
                            "another-long-password")
    out = ferrite(tmp_path, "users", "remove", "v@example.com")
    assert out.returncode == 0 and store.find_user("v@example.com") is None
    out = ferrite(tmp_path, "users", "remove", "v@example.com")
    assert out.returncode == 1 and "no user has the email" in out.stderr
