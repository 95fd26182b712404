"""The dashboard in Debian's Chromium against a real `ferrite serve`: set-up, login, the
numbers against the Stats API, filtering, periods, export, realtime, sharing, roles, and
hostile event data rendered as text."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ferrite.plugins.sqlite_accounts import SqliteAccounts
from ferrite.plugins.sqlite_stats import SqliteStats
from ferrite.stats import keys as api_keys
from ferrite.testing import DESKTOP_CHROME

from .browser_helpers import chromium
from .dashboard_helpers import PASSWORD
from .edge_helpers import ferrite_serve
from .stats_helpers import event, write

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.slow

XSS = ['<img src=x onerror="window.__xss=1;alert(1)">',
       '"><script>window.__xss=2;alert(2)</script>',
       "javascript:alert(3)//", "'-alert(4)-'", "{{7*7}}<svg onload=alert(5)>"]
TOP = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration")
CONFIG = """
[sites."a.example"]
timezone = "Europe/Berlin"
[sites."b.example"]
[dashboard]
realtime_refresh_seconds = 1
default_period = "7d"
"""


def seed(db):
    now = datetime.now(UTC).replace(microsecond=0)
    events = []
    for day in range(1, 9):
        for n in range(day + 2):
            ts = (now - timedelta(days=day, minutes=n * 7)).strftime("%Y-%m-%dT%H:%M:%SZ")
            session = f"a{day}-{n}"
            events.append(event(ts, session, "/" if n % 2 else "/blog", site="a.example",
                                source="Google" if n % 3 else "", browser="Firefox"
                                if n % 2 else "Chrome", referrer="https://www.google.com/"
                                if n % 3 else ""))
            if n % 2:
                later = (now - timedelta(days=day, minutes=n * 7 - 2)).strftime(
                    "%Y-%m-%dT%H:%M:%SZ")
                events.append(event(later, session, "/pricing", site="a.example",
                                    source="Google" if n % 3 else ""))
        ts = (now - timedelta(days=day)).strftime("%Y-%m-%dT%H:%M:%SZ")
        events.append(event(ts, f"b{day}", "/secret-b-page", site="b.example"))
    ts = (now - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i, payload in enumerate(XSS):  # strangers' text in every field a panel shows
        events.append(event(ts, f"x{i}", "/" + payload, site="a.example", name="pageview",
                            source=payload, referrer=payload, browser=payload, os=payload,
                            utm_source=payload, utm_medium=payload, utm_campaign=payload))
        events.append(event(ts, f"x{i}", "/" + payload, site="a.example", name=payload,
                            props={payload: payload, "plan": payload}))
    write(db, events)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dashboard")
    seed(folder / "ferrite.db")
    with ferrite_serve(folder, config=CONFIG) as server:
        lines = []
        while not any("set up:" in line for line in lines):
            lines.append(server.process.stdout.readline())
        server.setup = re.search(r"(http://\S+/setup/\S+)", "".join(lines))[1]
        server.db = folder / "ferrite.db"
        server.accounts = SqliteAccounts(str(server.db))
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def context(browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME, accept_downloads=True)
    yield context
    context.close()


def watch(page):
    """Record dialogs and script errors: an XSS would show up as either."""
    seen = {"dialogs": [], "errors": []}
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("console", lambda m: seen["errors"].append(m.text) if m.type == "error" else None)
    return seen


def log_in(page, server, email="admin@example.com", password=PASSWORD):
    page.goto(server.url + "/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def admin(server):
    if server.accounts.find_user("admin@example.com") is None:
        from ferrite.accounts import service
        service.add_user(server.accounts, "admin@example.com", PASSWORD, "admin")


def shown(page):
    return {m: page.get_attribute(f'[data-metric="{m}"]', "data-value") for m in TOP}


def api(server, body):
    stats = SqliteStats(str(server.db))
    key, _ = api_keys.create(stats, ["a.example", "b.example"], "test")
    stats.close()
    response = httpx.post(server.url + "/api/v2/query", json=body,
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


def same_numbers(page, server, date_range, filters=()):
    answer = api(server, {"site_id": "a.example", "metrics": list(TOP),
                          "date_range": date_range, "filters": list(filters)})
    expected = answer["results"][0]["metrics"]
    got = shown(page)
    assert {m: float(got[m]) for m in TOP} == {m: float(v) for m, v in zip(TOP, expected,
                                                                             strict=True)}
    return expected


def test_the_setup_link_creates_the_first_admin(server, context):
    page = context.new_page()
    seen = watch(page)
    page.goto(server.setup)
    page.fill("#email", "admin@example.com")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    assert page.locator('[data-site="a.example"]').count() == 1
    assert server.accounts.find_user("admin@example.com").role == "admin"
    again = context.new_page()
    again.goto(server.setup)
    assert "expired or was used" in again.content()  # the link is dead
    assert not seen["errors"]


def test_login_and_the_numbers_equal_the_stats_api(server, context):
    admin(server)
    page = context.new_page()
    seen = watch(page)
    page.goto(server.url + "/dashboard/a.example/")
    page.wait_for_url(re.compile(r"/login\?next="))
    page.fill("#email", "admin@example.com")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/a.example/")
    page.wait_for_selector("#chart canvas")  # uPlot drew, from our own origin
    expected = same_numbers(page, server, "7d")
    assert expected[0] > 10
    pages = page.locator('[data-panel="pages"] tbody tr')
    assert pages.count() >= 3
    assert not seen["errors"], seen["errors"]


def test_clicking_a_page_filters_everything(server, context):
    admin(server)
    page = context.new_page()
    log_in(page, server)
    page.goto(server.url + "/dashboard/a.example/?period=7d")
    before = int(page.get_attribute('[data-metric="visitors"]', "data-value"))
    page.click('[data-panel="pages"] a:text-is("/blog")')
    page.wait_for_url(re.compile(r"f=event%3Apage%3D%3D%2Fblog"))
    after = same_numbers(page, server, "7d", [["is", "event:page", ["/blog"]]])
    assert 0 < after[0] < before
    chip = page.locator('.chips a[data-filter="event:page"]')
    assert "/blog" in chip.inner_text()
    rows = page.locator('[data-panel="pages"] tbody tr')
    assert [rows.nth(i).get_attribute("data-dimension") for i in range(rows.count())] == \
        ["/blog"]
    browsers = page.locator('[data-panel="browsers"] tbody tr')
    assert browsers.count() == 1  # /blog was seen by Chrome only: every panel is filtered
    chip.click()
    page.wait_for_load_state()
    assert int(page.get_attribute('[data-metric="visitors"]', "data-value")) == before
    assert "f=" not in page.url


def test_period_change_and_compare(server, context):
    admin(server)
    page = context.new_page()
    log_in(page, server)
    page.goto(server.url + "/dashboard/a.example/")
    page.select_option("select[name=period]", "28d")  # submits itself
    page.wait_for_url(re.compile(r"period=28d"))
    same_numbers(page, server, "28d")
    page.select_option("select[name=compare]", "previous_period")
    page.wait_for_url(re.compile(r"compare=previous_period"))
    chart = json.loads(page.locator("#chart-data").text_content())
    assert chart["previous"] is not None and len(chart["previous"]) == len(chart["labels"])
    assert page.locator(".u-legend").inner_text().count("Previous period") == 1
    page.click('a:text-is("Week")')
    page.wait_for_url(re.compile(r"interval=week"))
    assert json.loads(page.locator("#chart-data").text_content())["interval"] == "week"
    # the chart's table alternative holds the same numbers
    page.click("details summary")
    cells = page.locator("[data-chart-table] tbody tr td:nth-child(2)").all_inner_texts()
    assert [float(c) for c in cells] == [float(v) for v in
                                         json.loads(page.locator("#chart-data")
                                                    .text_content())["values"]]
    # a custom range, and every state is in the URL: opening it again reproduces the view
    page.select_option("select[name=period]", "custom")
    page.fill("#from", (datetime.now(UTC) - timedelta(days=5)).strftime("%Y-%m-%d"))
    page.fill("#to", (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%d"))
    page.click("#period-form button[type=submit]")
    page.wait_for_url(re.compile(r"period=custom"))
    query = parse_qs(urlsplit(page.url).query)
    numbers = shown(page)
    other = context.new_page()
    other.goto(page.url)
    assert shown(other) == numbers
    same_numbers(other, server, [query["from"][0], query["to"][0]])


def test_csv_download(server, context):
    admin(server)
    page = context.new_page()
    log_in(page, server)
    page.goto(server.url + "/dashboard/a.example/?period=7d")
    with page.expect_download() as info:
        page.click('[data-panel="pages"] h2 a')
    download = info.value
    assert download.suggested_filename == "a.example-pages.csv"
    lines = Path(download.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "Page,visitors,pageviews"
    answer = api(server, {"site_id": "a.example", "metrics": ["visitors", "pageviews"],
                          "date_range": "7d", "dimensions": ["event:page"]})
    assert len(lines) - 1 == len(answer["results"])
    assert lines[1] == ",".join([answer["results"][0]["dimensions"][0],
                                 *map(str, answer["results"][0]["metrics"])])


def test_realtime_updates_after_new_hits(server, context):
    admin(server)
    page = context.new_page()
    log_in(page, server)
    page.goto(server.url + "/dashboard/a.example/?period=day")
    box = '[data-metric="current_visitors"]'
    before = int(page.get_attribute(box, "data-value"))
    for i in range(3):
        response = httpx.post(server.url + "/api/event", headers={
            "User-Agent": DESKTOP_CHROME, "Content-Type": "text/plain",
            "X-Forwarded-For": f"203.0.113.{i + 1}"},
            content=json.dumps({"n": "pageview", "u": "https://a.example/live",
                                "d": "a.example"}))
        assert response.status_code in (200, 202), response.text
    deadline = time.monotonic() + 15  # (wait_for_function would eval a string: CSP says no)
    while int(page.get_attribute(box, "data-value")) <= before and \
            time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert int(page.locator(f"{box} .value").inner_text()) > before


def test_a_shared_link_works_logged_out_for_its_site_only(server, browser, context):
    admin(server)
    page = context.new_page()
    log_in(page, server)
    page.goto(server.url + "/dashboard/a.example/settings")
    page.fill("#share-name", "for the team")
    page.click("form[action$='/shares'] button[type=submit]")
    link = page.get_attribute("[data-new-share]", "href")
    assert "/share/" in link
    stranger = browser.new_context(user_agent=DESKTOP_CHROME)
    try:
        shared = stranger.new_page()
        seen = watch(shared)
        shared.goto(link)
        shared.wait_for_selector("#chart canvas")
        assert "a.example" in shared.title()
        assert int(shared.get_attribute('[data-metric="visitors"]', "data-value")) > 0
        assert "secret-b-page" not in shared.content()
        shared.click('[data-panel="pages"] a:text-is("/blog")')  # filtering works, read-only
        shared.wait_for_url(re.compile(r"/share/.*f=event"))
        assert shared.locator("text=Log out").count() == 0
        shared.goto(server.url + "/dashboard/b.example/")
        assert "/login" in shared.url  # the link opens nothing but its own site
        response = shared.request.get(server.url + "/dashboard/b.example/export.csv",
                                      max_redirects=0)
        assert response.status == 302
        assert not seen["errors"], seen["errors"]
    finally:
        stranger.close()


def test_a_viewer_is_refused_other_sites(server, browser):
    from ferrite.accounts import service

    if server.accounts.find_user("viewer@example.com") is None:
        service.add_user(server.accounts, "viewer@example.com", PASSWORD, "viewer",
                         ["a.example"])
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    try:
        page = context.new_page()
        log_in(page, server, "viewer@example.com")
        page.wait_for_url("**/dashboard/")
        assert page.locator("[data-site]").all_inner_texts()[0].startswith("a.example")
        assert page.locator('[data-site="b.example"]').count() == 0
        response = page.goto(server.url + "/dashboard/b.example/")
        assert response.status == 403 and "secret-b-page" not in page.content()
        for path in ("/dashboard/b.example/export.csv?panel=pages",
                     "/dashboard/b.example/export.csv", "/dashboard/b.example/realtime",
                     "/dashboard/keys", "/dashboard/a.example/settings"):
            assert page.request.get(server.url + path).status == 403, path
        assert page.goto(server.url + "/dashboard/a.example/").status == 200
    finally:
        context.close()


def test_hostile_event_data_renders_as_text(server, context):
    admin(server)
    page = context.new_page()
    seen = watch(page)
    log_in(page, server)
    page.goto(server.url + "/dashboard/a.example/?period=7d")
    page.wait_for_selector("#chart canvas")
    panels = page.locator("[data-panel]")
    names = {panels.nth(i).get_attribute("data-panel") for i in range(panels.count())}
    assert {"pages", "entry_pages", "exit_pages", "sources", "referrers", "utm_sources",
            "utm_mediums", "utm_campaigns", "browsers", "os", "events", "prop_keys"} <= names
    for panel in ("pages", "entry_pages", "exit_pages", "referrers", "utm_sources",
                  "utm_mediums", "utm_campaigns", "browsers", "os", "events"):
        text = page.locator(f'[data-panel="{panel}"]').inner_text()
        assert any(p.strip("/") in text for p in XSS), panel
    keys = page.locator('[data-panel="prop_keys"] a')
    assert XSS[0] in keys.all_inner_texts()
    keys.get_by_text(XSS[0], exact=True).click()  # the prop's values, on demand
    page.wait_for_url(re.compile(r"prop="))
    props = page.locator('[data-panel="props"]')
    assert props.get_attribute("data-prop") == XSS[0]
    assert XSS[0] in props.locator("tbody").inner_text()  # its values, as text
    assert page.evaluate("window.__xss") is None
    # filtering by a payload puts it in a chip and the URL, still as text
    page.locator('[data-panel="events"] a').get_by_text(XSS[1], exact=True).click()
    page.wait_for_url(re.compile(r"f=event%3Agoal"))
    assert XSS[1] in page.locator('.chips[aria-label="Active filters"]').inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x], svg[onload], script:not([src]):not([type])").count() == 0
    assert not seen["dialogs"], seen["dialogs"]
    assert not [e for e in seen["errors"] if "Content Security Policy" not in e]


def test_phone_width_dark_mode_and_keyboard(server, browser):
    admin(server)
    phone = browser.new_context(user_agent=DESKTOP_CHROME, color_scheme="dark",
                                viewport={"width": 360, "height": 740})
    try:
        page = phone.new_page()
        log_in(page, server)
        page.goto(server.url + "/dashboard/a.example/?period=7d")
        page.wait_for_selector("#chart canvas")
        # nothing wider than a phone: no sideways scrolling
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        dark = page.evaluate("getComputedStyle(document.body).backgroundColor")
        light_page = browser.new_context(color_scheme="light").new_page()
        light_page.goto(server.url + "/login")
        light = light_page.evaluate("getComputedStyle(document.body).backgroundColor")
        light_page.context.close()
        assert dark != light and dark == "rgb(17, 19, 24)"
        # from the keyboard alone: skip link first, then reach a page row and filter by it
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        target = page.locator('[data-panel="pages"] a:text-is("/blog")')
        for _ in range(200):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent") == "/blog" and \
                    target.evaluate("(el) => el === document.activeElement"):
                break
        else:
            pytest.fail("Tab never reached the /blog row")
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"f=event%3Apage%3D%3D%2Fblog"))
    finally:
        phone.close()
