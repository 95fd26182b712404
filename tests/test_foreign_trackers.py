"""Umami's and Plausible's own trackers, from the npm registry, in Debian's Chromium.

Site owners moving to Ferrite change only the script's host (Umami) or the endpoint
(Plausible). The page is served from another origin than Ferrite, as on a real site, so
the browser's CORS rules apply exactly as they would in production.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from . import bot_corpora
from .browser_helpers import DESKTOP_CHROME, chromium, names, wait_for_rows
from .edge_helpers import ferrite_serve

playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.slow

#: The npm packages and the file in each that a site embeds.
TRACKERS = {
    "umami.js": ("umami@2.10.0", "package/src/tracker/index.js"),
    "plausible.js": ("@plausible-analytics/tracker@0.4.6", "package/plausible.js"),
}
WEBSITE_ID = "94db1cb1-74f4-4a40-ad6c-962362670409"
SHOP = "http://shop.example"  # answered by Playwright, so the page has its own origin
#: Chromium lets a public page reach a loopback address only with the visitor's permission
#: (Local Network Access). In production the site and Ferrite are both public; here the
#: page is "public" and Ferrite is on loopback, so the check is switched off.
NO_LOCAL_NETWORK_CHECKS = ("--disable-features=LocalNetworkAccessChecks,"
                           "PrivateNetworkAccessSendPreflights,"
                           "PrivateNetworkAccessRespectPreflightResults,"
                           "BlockInsecurePrivateNetworkRequests")


def tracker_script(name: str) -> bytes:
    """The registry's file, cached beside the bot corpora."""
    cached = bot_corpora.CACHE / "trackers" / name
    if not cached.exists():
        spec, member = TRACKERS[name]
        work = cached.parent / (name + ".pack")
        archive = bot_corpora.npm_pack(spec, work)
        with tarfile.open(archive) as tar:
            handle = tar.extractfile(member)
            assert handle is not None
            cached.write_bytes(handle.read())
    return cached.read_bytes()


@pytest.fixture(scope="module")
def browser():
    with chromium(NO_LOCAL_NETWORK_CHECKS) as browser:
        yield browser


@pytest.fixture
def server(tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    for name in TRACKERS:
        (static / name).write_bytes(tracker_script(name))
    config = f"""
[edge]
umami_websites = {{ "{WEBSITE_ID}" = "umami.example" }}
"""
    with ferrite_serve(tmp_path, "--static", str(static), config=config) as server:
        server.db = tmp_path / "ferrite.db"
        yield server


def shop_page(context, path: str, html: str) -> None:
    """Serve `html` as the page at {SHOP}{path}."""
    context.route(SHOP + path, lambda route: route.fulfill(body=html,
                                                            content_type="text/html"))


def test_umamis_tracker_unchanged(server, browser):
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    shop_page(context, "/pricing?plan=pro", f"""<!doctype html>
<title>Pricing</title>
<script defer src="{server.url}/umami.js" data-website-id="{WEBSITE_ID}"></script>
<button id="signup" data-umami-event="Signup" data-umami-event-plan="pro">Sign up</button>
""")
    page = context.new_page()
    page.goto(SHOP + "/pricing?plan=pro", referer="https://news.ycombinator.com/item?id=1")
    wait_for_rows(server.db, lambda rows: "pageview" in names(rows))
    page.click("#signup")
    page.evaluate("umami.track('Download', {file: 'report.pdf', size: 3})")
    page.evaluate("umami.identify({email: 'someone@example.com'})")  # kept by nobody
    rows = wait_for_rows(server.db, lambda rows: {"Signup", "Download"} <= set(names(rows)))
    context.close()
    by_name = {r["name"]: r for r in rows}
    assert sorted(by_name) == ["Download", "Signup", "pageview"]
    view = by_name["pageview"]
    assert (view["site"], view["path"]) == ("umami.example", "/pricing")
    assert view["referrer"] == "https://news.ycombinator.com/item"  # query cut, as always
    assert (view["browser"], view["os"]) == ("Chrome", "Linux")
    assert json.loads(by_name["Signup"]["props"]) == {"plan": "pro"}
    assert json.loads(by_name["Download"]["props"]) == {"file": "report.pdf", "size": 3}
    assert len({r["session"] for r in rows}) == 1
    assert "someone@example.com" not in Path(server.db).read_bytes().decode("latin-1")


def test_plausibles_tracker_unchanged(server, browser):
    """Plausible's npm tracker is a library a site bundles into its own code: the module
    comes from the site's origin and only its endpoint points at Ferrite."""
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    library = tracker_script("plausible.js")
    context.route(SHOP + "/plausible.js", lambda route: route.fulfill(
        body=library, content_type="text/javascript"))
    shop_page(context, "/docs", f"""<!doctype html>
<title>Docs</title>
<p style="height: 3000px">Long page</p>
<script type="module">
  import {{ init, track }} from "/plausible.js";
  init({{ domain: "plausible.example", endpoint: "{server.url}/api/event" }});
  window.signup = () => track("Signup", {{ props: {{ plan: "team" }} }});
</script>
""")
    page = context.new_page()
    page.goto(SHOP + "/docs")
    wait_for_rows(server.db, lambda rows: "pageview" in names(rows))
    page.evaluate("signup()")
    page.mouse.wheel(0, 2000)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    rows = wait_for_rows(server.db, lambda rows: "Signup" in names(rows))
    context.close()
    assert sorted(names(rows)) == ["Signup", "pageview"]  # engagement events are dropped
    assert {r["site"] for r in rows} == {"plausible.example"}
    assert {r["path"] for r in rows} == {"/docs"}
    signup = next(r for r in rows if r["name"] == "Signup")
    assert json.loads(signup["props"]) == {"plan": "team"}


def test_the_documented_pixel_carries_the_page_across_origins(server, browser):
    """Browsers send only the origin as Referer to another origin by default, so a pixel
    without a referrer policy records every page as "/" (issue 13)."""
    context = browser.new_context(user_agent=DESKTOP_CHROME)
    shop_page(context, "/pricing/team?ref=mail", f"""<!doctype html>
<noscript></noscript>
<img src="{server.url}/p.gif?d=pixel.example" alt="" width="1" height="1"
     referrerpolicy="no-referrer-when-downgrade">
<img src="{server.url}/p.gif?d=bare.example" alt="" width="1" height="1">
""")
    context.new_page().goto(SHOP + "/pricing/team?ref=mail")
    rows = wait_for_rows(server.db, lambda rows: len(rows) >= 2)
    context.close()
    paths = {r["site"]: r["path"] for r in rows}
    assert paths == {"pixel.example": "/pricing/team", "bare.example": "/"}
