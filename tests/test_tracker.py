"""The tracker in a real headless Chromium, against a real `ferrite serve`."""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest

from .browser_helpers import DESKTOP_CHROME, chromium, names, wait_for_rows
from .conftest import ROOT
from .edge_helpers import ferrite_serve, stored

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.slow
SITE = ROOT / "examples" / "site"


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def server(tmp_path):
    with ferrite_serve(tmp_path, "--static", str(SITE)) as server:
        server.db = tmp_path / "ferrite.db"
        yield server


@pytest.fixture
def context(browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    context.route("https://external.example/**",
                  lambda route: route.fulfill(body="<p>elsewhere</p>", content_type="text/html"))
    yield context
    context.close()


def props(row: dict) -> dict:
    return json.loads(row["props"]) if row["props"] else {}


def test_a_pageview_lands(server, context):
    page = context.new_page()
    page.goto(server.url + "/about.html")
    (row,) = wait_for_rows(server.db, lambda rows: len(rows) >= 1)
    assert (row["site"], row["name"], row["path"]) == ("demo.example", "pageview", "/about.html")
    assert (row["browser"], row["os"], row["device"]) == ("Chrome", "Linux", "desktop")
    assert row["session"]


def test_every_embedding_feature_on_the_home_page(server, context):
    page = context.new_page()
    page.goto(server.url + "/")
    wait_for_rows(server.db, lambda rows: {"pageview", "Queued before load"} <= set(names(rows)))
    page.click("#signup")
    page.click("#newsletter button")
    page.click("#code")
    page.locator("#pricing").scroll_into_view_if_needed()
    page.mouse.wheel(0, -3000)
    page.locator("#pricing").scroll_into_view_if_needed()  # seen again: still reported once
    wait_for_rows(server.db, lambda rows: "Pricing seen" in names(rows))
    page.click("#download")
    page.goto(server.url + "/")
    page.click("#outbound")
    page.wait_for_url("https://external.example/docs")
    rows = wait_for_rows(server.db, lambda rows: "Outbound Link" in names(rows))
    by_name = {r["name"]: r for r in rows}
    counts = Counter(names(rows))
    assert counts["Pricing seen"] == 1
    assert props(by_name["Queued before load"]) == {"from": "stub"}
    assert props(by_name["Signup"]) == {"plan": "pro", "source": "hero"}
    assert "Newsletter" in counts
    assert props(by_name["Played video"]) == {"length": 42}
    assert props(by_name["File Download"]) == {"url": server.url + "/files/report.pdf"}
    assert props(by_name["Outbound Link"]) == {"url": "https://external.example/docs"}
    assert all(r["path"] == "/" and r["site"] == "demo.example" for r in rows)
    assert len({r["session"] for r in rows}) == 1  # one browser, one session


def test_single_page_app_one_pageview_per_route(server, context):
    page = context.new_page()
    page.goto(server.url + "/spa.html")
    wait_for_rows(server.db, lambda rows: len(rows) == 1)
    page.click("#to-a")
    page.click("#same")  # replaceState to the same URL: no pageview
    page.click("#to-a")  # pushState to the same URL: no pageview
    page.click("#to-b")
    page.click("#back")  # popstate back to /spa/a
    page.wait_for_function("location.pathname == '/spa/a'")
    rows = wait_for_rows(server.db, lambda rows: len(rows) >= 4)
    time.sleep(1.5)  # anything extra would have been flushed by now
    rows = stored(server.db)
    assert [r["path"] for r in rows] == ["/spa.html", "/spa/a", "/spa/b", "/spa/a"]
    assert set(names(rows)) == {"pageview"}


def test_hash_routing(server, context):
    page = context.new_page()
    page.goto(server.url + "/hash.html")
    page.click("#settings")
    page.click("#profile")
    rows = wait_for_rows(server.db, lambda rows: len(rows) >= 3)
    assert [r["path"] for r in rows] == ["/hash.html", "/hash.html#/settings",
                                         "/hash.html#/profile"]


def test_events_queued_just_before_the_page_closes_still_land(server, context):
    page = context.new_page()
    page.goto(server.url + "/about.html")
    wait_for_rows(server.db, lambda rows: len(rows) == 1)
    page.evaluate("ferrite('Leaving', {reason: 'closed'})")  # queued for the 1 s batch...
    page.close()  # ...but the page goes first: pagehide sends it by beacon
    rows = wait_for_rows(server.db, lambda rows: "Leaving" in names(rows))
    assert props(rows[-1]) == {"reason": "closed"}


def test_excluded_paths_and_the_ignore_switch_send_nothing(server, context, browser):
    page = context.new_page()
    page.goto(server.url + "/private/")
    page.evaluate("ferrite('Secret')")
    page.goto(server.url + "/about.html")  # leaving flushes anything queued
    wait_for_rows(server.db, lambda rows: len(rows) >= 1)
    ignoring = browser.new_context(user_agent=DESKTOP_CHROME)
    ignoring.add_init_script("localStorage.setItem('ferrite_ignore', 'true')")
    quiet = ignoring.new_page()
    quiet.goto(server.url + "/spa.html")
    quiet.click("#to-a")
    quiet.close()
    ignoring.close()
    time.sleep(1.5)
    assert [r["path"] for r in stored(server.db)] == ["/about.html"]


def test_noscript_pixel_with_javascript_disabled(server, browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME, java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + "/noscript.html")
    page.goto(server.url + "/about.html")  # its <noscript> image
    rows = wait_for_rows(server.db, lambda rows: len(rows) >= 2)
    context.close()
    assert [(r["path"], r["site"], r["browser"]) for r in rows] == [
        ("/noscript.html", "demo.example", "Chrome"), ("/about.html", "demo.example", "Chrome")]
