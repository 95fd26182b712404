"""First render of a dashboard site page over many events, in Debian's Chromium.

    .venv/bin/python bench/dashboard.py [--events 1000000] [--rounds 5]
    .venv/bin/python bench/dashboard.py --screenshots docs/img   # the docs' pictures

A real `ferrite serve` on a SQLite file of --events events over 90 days (bench/stats.py's
generator, rollups built as the server's builder keeps them) and a few hundred hits of the
last half hour. Each round opens the site page in a fresh browser context (empty cache,
logged in) and reads the browser's own timing: navigation (time to first byte, DOM ready,
load), first contentful paint, and the chart drawn (a performance mark the page's script
sets), which is the first meaningful render: numbers, panels and chart on screen. Bytes are
the transfer sizes of the first load. Medians of --rounds, with the targets beside them.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from stats import SITE, fresh_realtime, generate  # noqa: E402

from ferrite import load_config  # noqa: E402
from ferrite.accounts import service  # noqa: E402
from ferrite.plugins.sqlite_accounts import SqliteAccounts  # noqa: E402
from ferrite.stats.engine import Engine  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
EMAIL, PASSWORD = "bench@example.com", "a-long-bench-password"
RENDER_TARGET_MS, BYTES_TARGET = 1000, 150 * 1024
TIMING = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByName("first-contentful-paint")[0];
  const chart = performance.getEntriesByName("ferrite-chart")[0];
  const resources = performance.getEntriesByType("resource");
  return {ttfb: nav.responseStart, dom: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
          fcp: paint ? paint.startTime : null, chart: chart ? chart.startTime : null,
          bytes: nav.transferSize + resources.reduce((n, r) => n + r.transferSize, 0),
          html: nav.transferSize, files: resources.length};
}"""


def engine_parts(folder: Path, filters: tuple[tuple[str, str], ...], rounds: int) -> None:
    """Each engine call of a site page, one at a time in this process (medians)."""
    from ferrite.dashboard import report
    from ferrite.dashboard.view import View

    config = load_config(data={"plugins": {"sqlite": {"path": str(folder / "ferrite.db")}},
                               "sites": {SITE: {}}})
    engine = Engine(config)
    times: dict[str, list[float]] = {}
    for _ in range(rounds):
        started = time.perf_counter()
        _, jobs = report.plan_report(engine, SITE, View("28d", filters=filters))
        times.setdefault("(plan, prop keys)", []).append(time.perf_counter() - started)
        for name, job in jobs.items():
            started = time.perf_counter()
            job()
            times.setdefault(name, []).append(time.perf_counter() - started)
    engine.close()
    total = sum(statistics.median(t) for t in times.values())
    label = " and ".join(f"{d}=={v}" for d, v in filters) or "no filter"
    print(f"engine calls of the 28-day page, {label} (medians of {rounds}; "
          f"sum {total * 1000:.0f} ms):")
    print("  " + ", ".join(f"{name.removeprefix('panel:')} {statistics.median(t) * 1000:.0f}"
                           for name, t in times.items()))


def serve(folder: Path) -> tuple[subprocess.Popen, str]:
    (folder / "ferrite.toml").write_text(f'[sites."{SITE}"]\n[stats]\n'
                                         f'rollup_interval_seconds = 0\n')
    process = subprocess.Popen([sys.executable, "-m", "ferrite", "serve", "--bind",
                                "127.0.0.1:0"], cwd=folder, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return process, match[1]
    raise SystemExit("ferrite serve did not start")


def prepare(folder: Path, events: int) -> None:
    db = folder / "ferrite.db"
    if not db.exists():
        print(f"generating {events:,} events over 90 days ...", flush=True)
        generate(db, events, 90)
        config = load_config(data={"plugins": {"sqlite": {"path": str(db)}}})
        started = time.perf_counter()
        Engine(config).build()
        print(f"rollups built in {time.perf_counter() - started:.1f} s", flush=True)
    fresh_realtime(db)
    accounts = SqliteAccounts(str(db))
    if accounts.find_user(EMAIL) is None:
        service.add_user(accounts, EMAIL, PASSWORD, "admin")


def log_in(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url + "/login")
    page.fill("#email", EMAIL)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")
    cookies = context.cookies()
    context.close()
    return cookies


def measure(browser, url: str, cookies, path: str, rounds: int) -> list[dict]:
    results = []
    for _ in range(rounds):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies(cookies)
        page = context.new_page()
        page.goto(url + path)
        page.wait_for_selector("#chart canvas")
        page.wait_for_load_state("load")
        results.append(page.evaluate(TIMING))
        context.close()
    return results


def median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows if r[key] is not None)


def report(name: str, rows: list[dict]) -> None:
    render = median(rows, "chart")
    print(f"{name}:")
    print(f"  time to first byte  {median(rows, 'ttfb'):7.0f} ms")
    print(f"  first paint (FCP)   {median(rows, 'fcp'):7.0f} ms")
    print(f"  chart drawn         {render:7.0f} ms   (first meaningful render; target "
          f"{RENDER_TARGET_MS} ms: {render / RENDER_TARGET_MS:.2f}x of it)")
    print(f"  load event          {median(rows, 'load'):7.0f} ms")
    bytes_ = median(rows, "bytes")
    print(f"  transferred         {bytes_ / 1024:7.1f} KB  in {int(median(rows, 'files')) + 1} "
          f"requests (HTML {median(rows, 'html') / 1024:.1f} KB; target "
          f"{BYTES_TARGET // 1024} KB: {bytes_ / BYTES_TARGET:.2f}x of it)")
    print(f"  rounds (chart ms)   {[round(r['chart']) for r in rows]}")


def screenshots(browser, url: str, cookies, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      color_scheme=scheme)
        context.add_cookies(cookies)
        page = context.new_page()
        page.goto(url + "/dashboard/")
        page.screenshot(path=str(out / f"dashboard-overview-{scheme}.png"))
        page.goto(url + f"/dashboard/{SITE}/?period=28d&compare=previous_period")
        page.wait_for_selector("#chart canvas")
        page.screenshot(path=str(out / f"dashboard-site-{scheme}.png"), full_page=True)
        context.close()
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=1)
    phone.add_cookies(cookies)
    page = phone.new_page()
    page.goto(url + f"/dashboard/{SITE}/?period=7d")
    page.wait_for_selector("#chart canvas")
    page.screenshot(path=str(out / "dashboard-site-phone.png"))
    phone.close()
    print(f"screenshots in {out}")


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--keep", metavar="DIR", help="keep (and reuse) the database in DIR")
    parser.add_argument("--screenshots", metavar="DIR",
                        help="take the docs' screenshots into DIR (on 200,000 events) instead")
    args = parser.parse_args()
    events = 200_000 if args.screenshots else args.events
    folder = Path(args.keep or tempfile.mkdtemp(prefix="ferrite-dash-"))
    folder.mkdir(parents=True, exist_ok=True)
    prepare(folder, events)
    if not args.screenshots:
        engine_parts(folder, (), 3)
        engine_parts(folder, (("visit:browser", "Firefox"),), 1)
    process, url = serve(folder)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            cookies = log_in(browser, url)
            if args.screenshots:
                screenshots(browser, url, cookies, Path(args.screenshots))
                return
            print(f"{events:,} events, site page of the last 28 days (the default), "
                  f"{args.rounds} rounds, each a fresh browser context (empty cache)")
            measure(browser, url, cookies, f"/dashboard/{SITE}/", 1)  # warm the server
            report("site page, no filter", measure(browser, url, cookies,
                                                   f"/dashboard/{SITE}/", args.rounds))
            report("site page, today", measure(browser, url, cookies,
                                               f"/dashboard/{SITE}/?period=day", args.rounds))
            filtered = f"/dashboard/{SITE}/?period=28d&f=visit:browser==Firefox"
            report("site page filtered by a browser (no rollup: raw events)",
                   measure(browser, url, cookies, filtered, max(1, args.rounds // 2)))
            print(json.dumps({"events": events}))
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
