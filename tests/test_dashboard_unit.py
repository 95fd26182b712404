"""Dashboard pieces: throttling, sessions, CSRF, views as URLs, formatting, CSV cells,
and the login flow through the real app."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from urllib.parse import parse_qsl

import pytest
from werkzeug.datastructures import MultiDict

from ferrite.accounts import service
from ferrite.dashboard.auth import SESSION_COOKIE, Keys
from ferrite.dashboard.report import duration, formatted, short_number
from ferrite.dashboard.throttle import Throttle
from ferrite.dashboard.view import View, ViewError, parse_view
from ferrite.dashboard.web import rows_csv, sparkline

from .dashboard_helpers import PASSWORD, csrf_of, dashboard, log_in
from .stats_helpers import event


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_per_account_and_per_client():
    clock = Clock()
    t = Throttle(per_account=3, per_client=5, window_seconds=60, clock=clock)
    home, cafe = t.client_key("192.0.2.1"), t.client_key("198.51.100.7")
    assert "192.0.2.1" not in home and len(home) == 32  # a keyed hash, never the address
    for _ in range(3):
        assert t.wait("Ann@x.example", home) == 0
        t.failed("Ann@x.example", home)
    assert t.wait("ann@x.example", cafe) == 60  # the account waits, from anywhere
    assert t.wait("bob@x.example", home) == 0
    t.failed("bob@x.example", home)
    t.failed("carl@x.example", home)
    assert t.wait("dora@x.example", home) == 60  # the client tried five accounts
    assert t.wait("dora@x.example", cafe) == 0
    clock.now += 30
    assert t.wait("ann@x.example", cafe) == 30
    clock.now += 31
    assert t.wait("ann@x.example", home) == 0  # the window slid past
    t.failed("eve@x.example", cafe)
    t.succeeded("eve@x.example")
    assert ("account", "eve@x.example") not in t._failures


def test_sessions_are_signed_stored_and_end(tmp_path):
    from ferrite.plugins.sqlite_accounts import SqliteAccounts

    store = SqliteAccounts(str(tmp_path / "a.db"))
    user = service.add_user(store, "a@x.example", PASSWORD, "admin")
    keys = Keys(store.secret("dashboard"), 3600)
    cookie, _ = keys.start_session(store, user)
    who = keys.session_user(store, cookie)
    assert who is not None and who.user == user and who.admin
    raw = cookie.split(".")[0]
    assert store.find_session(raw) is None  # only a hash of the id is stored
    tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    assert keys.session_user(store, tampered) is None
    assert keys.session_user(store, raw) is None  # unsigned
    other = Keys(b"another node's secret, not ours", 3600)
    assert other.session_user(store, cookie) is None
    store.remove_session(who.session_hash)  # logout
    assert keys.session_user(store, cookie) is None
    cookie, _ = keys.start_session(store, user)
    service.set_password(store, user, "a-brand-new-password")
    assert keys.session_user(store, cookie) is None  # a new password ends old sessions
    expired = Keys(store.secret("dashboard"), -1)
    cookie, _ = expired.start_session(store, user)
    assert expired.session_user(store, cookie) is None


def test_csrf_tokens_bind_to_their_cookie():
    keys = Keys(b"k" * 32, 3600)
    token = keys.csrf_token("cookie-1")
    assert keys.csrf_ok("cookie-1", token)
    assert not keys.csrf_ok("cookie-2", token)
    assert not keys.csrf_ok(None, token) and not keys.csrf_ok("cookie-1", None)
    assert not keys.csrf_ok("cookie-1", token.upper())
    assert not Keys(b"j" * 32, 3600).csrf_ok("cookie-1", token)


def args_of(query: str) -> MultiDict:
    return MultiDict(parse_qsl(query.removeprefix("?"), keep_blank_values=True))


def test_views_round_trip_through_the_url():
    view = View("custom", date(2026, 3, 1), date(2026, 3, 31), "year_over_year", "pageviews",
                "week", (("event:page", "/a==b&c"), ("visit:source", "")))
    assert parse_view(args_of(view.url())) == view
    assert view.body("ex.com", ["visitors"])["filters"] == [
        ["is", "event:page", ["/a==b&c"]], ["is", "visit:source", [""]]]
    assert view.body("ex.com", ["visitors"])["date_range"] == ["2026-03-01", "2026-03-31"]
    # a row click replaces the filter on its dimension; a chip's link removes only its own
    assert parse_view(args_of(view.with_filter("visit:source", "Google"))).filters == (
        ("event:page", "/a==b&c"), ("visit:source", "Google"))
    assert parse_view(args_of(view.without_filter(0))).filters == (("visit:source", ""),)
    assert parse_view(MultiDict()).period == "28d"
    assert parse_view(MultiDict(), default_period="7d").period == "7d"


@pytest.mark.parametrize(("args", "field"), [
    ({"period": "week"}, "period"),
    ({"period": "custom", "from": "2026-03-01"}, "from"),
    ({"period": "custom", "from": "2026-03-02", "to": "2026-03-01"}, "to"),
    ({"metric": "revenue"}, "metric"),
    ({"interval": "minute"}, "interval"),
    ({"compare": "yesterday"}, "compare"),
    ({"f": "event:page"}, "f[0]"),
])
def test_bad_views_name_the_parameter(args, field):
    with pytest.raises(ViewError) as info:
        parse_view(MultiDict(args))
    assert info.value.field == field


def test_formatting():
    assert [short_number(n) for n in (0, 999, 1000, 1500, 2_340_000, 1.25, None)] == [
        "0", "999", "1k", "1.5k", "2.3M", "1.25", "-"]
    assert [duration(s) for s in (0, 59, 61, 3725)] == ["0s", "59s", "1m 1s", "1h 2m"]
    assert formatted("bounce_rate", 42.5) == "42.5%"
    assert sparkline([0, 5, 10]).split() == ["0.0,23.0", "50.0,12.0", "100.0,1.0"]


def test_csv_cells_cannot_become_formulas():
    text = rows_csv(["Page", "visitors"], [["=HYPERLINK(\"http://evil\")", 3],
                                           ["+1", 1], ["-2", 1], ["@SUM(A1)", 1],
                                           ["/ok", 2]])
    rows = list(csv.reader(io.StringIO(text)))
    assert [r[0] for r in rows[1:]] == ["'=HYPERLINK(\"http://evil\")", "'+1", "'-2",
                                        "'@SUM(A1)", "/ok"]


async def test_login_logout_and_throttling(tmp_path):
    async with dashboard(tmp_path, dashboard={"login_attempts": 3}) as dash:
        client = dash.client()
        response = await log_in(client, "admin@example.com")
        assert response.status_code == 302 and response.headers["Location"] == "/dashboard/"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
        assert (await client.get("/dashboard/")).status_code == 200
        old = client.cookie_jar  # keep the session cookie to replay after logout
        session = next(c.value for c in old if c.name == SESSION_COOKIE)
        csrf = await csrf_of(client, "/dashboard/")
        assert (await client.post("/logout", form={"csrf": csrf})).status_code == 302
        replay = dash.client()
        replay.set_cookie("localhost", SESSION_COOKIE, session)
        response = await replay.get("/dashboard/")
        assert response.status_code == 302  # the logged-out session is dead everywhere
        for _ in range(3):
            assert (await log_in(dash.client(), "viewer@example.com", "wrong-password")
                    ).status_code == 401
        throttled = await log_in(dash.client(), "viewer@example.com")  # right password
        assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0
        assert "Too many failed logins" in await throttled.get_data(as_text=True)
        assert (await log_in(dash.client(), "admin@example.com")).status_code == 302
        unknown = await log_in(dash.client(), "nobody@example.com")
        assert unknown.status_code == 401
        assert "Wrong email or password" in await unknown.get_data(as_text=True)


async def test_next_only_goes_to_our_own_pages(tmp_path):
    async with dashboard(tmp_path) as dash:
        for target, expected in (("/dashboard/a.example/", "/dashboard/a.example/"),
                                 ("//evil.example/", "/dashboard/"),
                                 ("https://evil.example/", "/dashboard/"),
                                 ("/\\evil.example", "/dashboard/")):
            client = dash.client()
            csrf = await csrf_of(client)
            response = await client.post("/login", query_string={"next": target}, form={
                "email": "admin@example.com", "password": PASSWORD, "csrf": csrf})
            assert response.headers["Location"] == expected, target


PROXY = {"client": ("127.0.0.1", 40000)}


async def test_cookies_are_secure_behind_a_trusted_https_proxy(tmp_path):
    async with dashboard(tmp_path, edge={"trusted_proxies": ["127.0.0.1/32"]}) as dash:
        client = dash.client()
        csrf = await csrf_of(client)
        form = {"email": "admin@example.com", "password": PASSWORD, "csrf": csrf}
        response = await client.post("/login", form=form, scope_base=PROXY,
                                     headers={"X-Forwarded-Proto": "https"})
        assert "Secure" in response.headers["Set-Cookie"]
    (tmp_path / "untrusted").mkdir()
    async with dashboard(tmp_path / "untrusted") as dash:  # the proxy is not trusted
        client = dash.client()
        csrf = await csrf_of(client)
        form = {"email": "admin@example.com", "password": PASSWORD, "csrf": csrf}
        response = await client.post("/login", form=form, scope_base=PROXY,
                                     headers={"X-Forwarded-Proto": "https"})
        assert "Secure" not in response.headers["Set-Cookie"]


async def test_setup_link_creates_the_first_admin_once(tmp_path):
    from datetime import timedelta

    from ferrite.plugins.sqlite_accounts import SqliteAccounts

    db = tmp_path / "fresh"
    db.mkdir()
    async with dashboard(db) as dash:
        store: SqliteAccounts = dash.store
        for user in store.list_users():
            store.remove_user(user.id)
        token = service.setup_token(store, timedelta(hours=1))
        client = dash.client()
        csrf = await csrf_of(client, f"/setup/{token}")
        bad = await client.post(f"/setup/{token}", form={
            "csrf": csrf, "email": "me@example.com", "password": "short", "confirm": "short"})
        assert bad.status_code == 400 and "at least 10" in await bad.get_data(as_text=True)
        ok = await client.post(f"/setup/{token}", form={
            "csrf": csrf, "email": "me@example.com", "password": PASSWORD, "confirm": PASSWORD})
        assert ok.status_code == 302 and ok.headers["Location"] == "/dashboard/"
        assert store.find_user("me@example.com").role == "admin"
        assert (await client.get("/dashboard/keys")).status_code == 200  # logged in
        assert (await dash.client().get(f"/setup/{token}")).status_code == 404  # dead now


async def test_exports(tmp_path):
    events = [event("2026-03-01T10:00:00Z", "s1", "=cmd|' /C calc'!A0", site="a.example"),
              event("2026-03-01T10:01:00Z", "s1", "/b", site="a.example"),
              event("2026-03-01T11:00:00Z", "s2", "/b", site="a.example",
                    browser="Chrome")]
    async with dashboard(tmp_path, events) as dash:
        client = dash.client()
        await log_in(client, "admin@example.com")
        query = "?period=custom&from=2026-03-01&to=2026-03-01"
        response = await client.get(f"/dashboard/a.example/export.csv{query}&panel=pages")
        assert response.headers["Content-Disposition"] == \
            'attachment; filename="a.example-pages.csv"'
        rows = list(csv.reader(io.StringIO(await response.get_data(as_text=True))))
        assert rows == [["Page", "visitors", "pageviews"], ["/b", "2", "2"],
                        ["'=cmd|' /C calc'!A0", "1", "1"]]
        response = await client.get(f"/dashboard/a.example/export.csv{query}"
                                    f"&f=visit:browser==Chrome&panel=pages")
        assert list(csv.reader(io.StringIO(await response.get_data(as_text=True))))[1:] == [
            ["/b", "1", "1"]]
        response = await client.get(f"/dashboard/a.example/export.csv{query}")
        archive = zipfile.ZipFile(io.BytesIO(await response.get_data()))
        assert {"visitors.csv", "pages.csv", "sources.csv", "browsers.csv", "events.csv"} <= \
            set(archive.namelist())
        visitors = archive.read("visitors.csv").decode().splitlines()
        assert visitors[0].startswith("date,visitors,visits,pageviews")
        assert visitors[1].startswith("2026-03-01,2,2,3")
        bad = await client.get(f"/dashboard/a.example/export.csv{query}&panel=nope")
        assert bad.status_code == 400 and "unknown panel" in await bad.get_data(as_text=True)


async def test_overview_counts_today_once_and_enricher_columns_get_panels(tmp_path):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    if now.hour == 0:
        now += timedelta(hours=1)
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    events = [  # one visitor in two hours of today, another in one
        event((now - timedelta(hours=1)).strftime(stamp), "s1", "/", site="a.example",
              extra={"country": "DE"}),
        event(now.strftime(stamp), "s1", "/x", site="a.example", extra={"country": "DE"}),
        event(now.strftime(stamp), "s2", "/", site="a.example", extra={"country": "FR"})]
    async with dashboard(tmp_path, events) as dash:
        client = dash.client()
        await log_in(client, "admin@example.com")
        page = await (await client.get("/dashboard/")).get_data(as_text=True)
        assert 'data-metric="visitors_today" data-value="2"' in page
        site = await (await client.get("/dashboard/a.example/?period=day")).get_data(
            as_text=True)
        assert 'data-panel="countries"' in site
        assert 'data-dimension="DE"' in site and 'data-dimension="FR"' in site


async def test_a_view_too_slow_to_count_still_answers(tmp_path):
    """Parts not counted in time show as too slow; the page never hangs or drops the
    connection (the server's read timeout would cut a late answer)."""
    events = [event(f"2026-03-01T10:{m:02d}:00Z", f"s{m}", f"/{m}", site="a.example")
              for m in range(60)]
    async with dashboard(tmp_path, events, stats={"query_timeout_seconds": 1e-6}) as dash:
        client = dash.client()
        await log_in(client, "admin@example.com")
        response = await client.get("/dashboard/a.example/?period=custom&from=2026-03-01"
                                    "&to=2026-03-01&f=visit:browser==Firefox")
        assert response.status_code == 200
        page = await response.get_data(as_text=True)
        assert "took too long to count" in page and 'data-slow="top' in page
        assert 'data-metric="visitors" data-value' not in page  # no made-up number
        bad = await client.get("/dashboard/a.example/?f=visit:nope==x")
        assert bad.status_code == 400 and "visit:nope" in await bad.get_data(as_text=True)


async def test_the_login_page_says_how_to_begin_when_nobody_exists(tmp_path):
    async with dashboard(tmp_path) as dash:
        client = dash.client()
        assert "No user exists yet" not in await (await client.get("/login")).get_data(
            as_text=True)
        for user in dash.store.list_users():
            dash.store.remove_user(user.id)
        page = await (await client.get("/login")).get_data(as_text=True)
        assert "No user exists yet" in page and "ferrite users add" in page
