"""A real `ferrite serve` on a real socket, driven by an HTTP client."""

from __future__ import annotations

import json
import re
import signal
import time

import httpx
import pytest
import trio

from ferrite.testing import DESKTOP_CHROME, IPHONE_SAFARI

from .edge_helpers import ferrite_serve, stored

CHROME = {"User-Agent": DESKTOP_CHROME}
PAGE = "https://example.com/docs?utm_source=newsletter&token=secret"

pytestmark = pytest.mark.slow


def client(server) -> httpx.Client:
    """A client that closes each connection: hypercorn's trio worker would otherwise keep an
    idle keep-alive connection until graceful_timeout, slowing every stop by seconds."""
    return httpx.Client(base_url=server.url, headers={"Connection": "close"},
                        limits=httpx.Limits(max_keepalive_connections=0))


def test_pixel_and_post_are_stored_with_site_path_session_and_browser(tmp_path):
    with ferrite_serve(tmp_path) as server, client(server) as http:
        pixel = http.get("/p.gif", params={"u": PAGE, "r": "https://duckduckgo.com/"},
                         headers=CHROME)
        assert pixel.status_code == 200 and len(pixel.content) == 43
        post = http.post("/api/event", content=json.dumps({"n": "Signup", "u": PAGE,
                                                           "p": {"plan": "pro"}}),
                         headers={**CHROME, "Content-Type": "text/plain"})
        assert post.status_code == 202 and post.text == "ok"
        mobile = http.get("/p.gif", params={"u": PAGE}, headers={"User-Agent": IPHONE_SAFARI})
        assert mobile.status_code == 200
        assert server.stop() == 0
    rows = stored(tmp_path / "ferrite.db")
    assert [(r["site"], r["name"], r["path"]) for r in rows] == [
        ("example.com", "pageview", "/docs?utm_source=newsletter"),
        ("example.com", "Signup", "/docs?utm_source=newsletter"),
        ("example.com", "pageview", "/docs?utm_source=newsletter")]
    assert [r["browser"] for r in rows] == ["Chrome", "Chrome", "Mobile Safari"]
    assert rows[0]["source"] == "search"
    assert rows[0]["session"] == rows[1]["session"] != rows[2]["session"]


def test_banner_tells_a_newcomer_what_to_paste(tmp_path):
    with ferrite_serve(tmp_path) as server:
        server.stop()
    text = "\n".join(server.output)
    # no site configured: the snippet lets the page's own host be the site, as the script
    # and the pixel do by default, instead of a made-up example.com
    assert f'<script defer src="{server.url}/script.js"></script>' in text
    assert f'<img src="{server.url}/p.gif" alt=""' in text
    assert "example.com" not in text
    assert f"sqlite -> {tmp_path / 'ferrite.db'}" in text
    assert "chain:    client_ip -> useragent -> bots -> session -> referrer -> sqlite" in text


def test_the_banner_names_the_one_configured_site(tmp_path):
    with ferrite_serve(tmp_path, config='[edge]\nsites = ["shop.example"]\n') as server:
        server.stop()
    text = "\n".join(server.output)
    assert f'<script defer src="{server.url}/script.js" data-site="shop.example">' in text
    assert f'<img src="{server.url}/p.gif?d=shop.example"' in text


def test_the_root_url_leads_to_the_dashboard(tmp_path):
    with ferrite_serve(tmp_path) as server, client(server) as http:
        root = http.get("/")
        assert root.status_code == 302 and root.headers["Location"] == "/dashboard/"
        assert http.get("/dashboard/").headers["Location"] == "/login?next=/dashboard/"


def test_the_root_url_says_what_answers_there(tmp_path):
    config = "[dashboard]\nenabled = false\n"
    with ferrite_serve(tmp_path, config=config) as server, client(server) as http:
        line = ""
        while "dashboard:" not in line:
            line = server.process.stdout.readline()
        assert "dashboard: off ([dashboard] enabled = false)" in line
        assert http.get("/dashboard/").status_code == 404
        page = http.get("/")
        assert page.status_code == 200
        assert "Ferrite is running" in page.text
        assert f'<script defer src="{server.url}/script.js"></script>' in page.text


def test_sessions_change_across_a_day_boundary_and_old_salts_go(tmp_path):
    with ferrite_serve(tmp_path, fake_time="2026-03-10 23:59:57") as server, \
            client(server) as http:
        before = http.get("/p.gif", params={"u": PAGE}, headers=CHROME)
        time.sleep(4)  # the server's clock crosses midnight
        after = http.get("/p.gif", params={"u": PAGE}, headers=CHROME)
        again = http.get("/p.gif", params={"u": PAGE}, headers=CHROME)
        assert before.status_code == after.status_code == again.status_code == 200
        assert server.stop() == 0
    rows = stored(tmp_path / "ferrite.db")
    assert [r["ts"][:10] for r in rows] == ["2026-03-10", "2026-03-11", "2026-03-11"]
    assert rows[0]["session"] != rows[1]["session"] == rows[2]["session"]
    days = [r["day"] for r in stored(tmp_path / "ferrite.db", "SELECT day FROM ferrite_salts")]
    assert days == ["2026-03-10", "2026-03-11"]  # yesterday is kept for late hits


def test_restart_keeps_the_days_sessions(tmp_path):
    sessions = []
    for _ in range(2):
        with ferrite_serve(tmp_path) as server, client(server) as http:
            http.get("/p.gif", params={"u": PAGE}, headers=CHROME)
            server.stop()
    sessions = [r["session"] for r in stored(tmp_path / "ferrite.db")]
    assert len(sessions) == 2 and sessions[0] == sessions[1]


TRUSTING = """
[pipeline]
plugins = ["client_ip", "useragent", "bots", "session", "referrer", "sqlite"]
[edge]
trusted_proxies = ["127.0.0.1/32"]
"""


def test_forwarded_addresses_from_a_trusted_proxy_count(tmp_path):
    with ferrite_serve(tmp_path, config=TRUSTING) as server, client(server) as http:
        for xff in ("198.51.100.7", "198.51.100.8", "6.6.6.6, 198.51.100.7", None):
            headers = {**CHROME, **({"X-Forwarded-For": xff} if xff else {})}
            assert http.get("/p.gif", params={"u": PAGE}, headers=headers).status_code == 200
        server.stop()
    log = "\n".join(server.output)
    assert "198.51.100" not in log and "6.6.6.6" not in log and "Mozilla" not in log
    s = [r["session"] for r in stored(tmp_path / "ferrite.db")]
    # .7 and "spoof, .7" are one visitor (rightmost untrusted hop); .8 and the proxy itself
    # are two others.
    assert s[0] == s[2] and len({s[0], s[1], s[3]}) == 3


def test_spoofed_forwarding_headers_from_an_untrusted_peer_are_ignored(tmp_path):
    with ferrite_serve(tmp_path) as server, client(server) as http:
        for fake in ("198.51.100.7", "198.51.100.8", "for=192.0.2.1"):
            http.get("/p.gif", params={"u": PAGE}, headers={
                **CHROME, "X-Forwarded-For": fake, "X-Real-IP": fake, "Forwarded": fake})
        server.stop()
    assert len({r["session"] for r in stored(tmp_path / "ferrite.db")}) == 1


def test_every_bad_input_class_over_the_wire(tmp_path):
    config = TRUSTING.replace("[edge]", "[edge]\nmax_body_bytes = 4096\nmax_events = 5")
    with ferrite_serve(tmp_path, config=config) as server, client(server) as http:
        def post(content, **headers):
            return http.post("/api/event", content=content, headers={**CHROME, **headers})

        cases = {
            "bad_json": post(b"{oops"),
            "bad_encoding": post(b'{"u": "https://example.com/\xff"}'),
            "too_large": post(b'{"u": "https://example.com/", "p": {"k": "' + b"x" * 8000
                              + b'"}}'),
            "too_many_events": post(json.dumps([{"u": PAGE}] * 6)),
            "too_long": post(json.dumps({"u": "https://example.com/" + "a" * 5000})[:4000]),
            "bad_prop": post(json.dumps({"u": PAGE, "p": {"k": {"deep": 1}}})),
            "missing_url": post(json.dumps({"n": "x"})),
        }
        huge_header = http.get("/p.gif", params={"u": PAGE},
                               headers={**CHROME, "X-Junk": "j" * 40_000})
        absurd_url = http.get("/p.gif", params={"u": "javascript:alert(1)"}, headers=CHROME)
        metrics = http.get("/metrics").text
        still_fine = http.get("/p.gif", params={"u": PAGE}, headers=CHROME)
        assert server.stop() == 0
    assert "Mozilla" not in "\n".join(server.output)  # bad input is not logged with its UA
    for reason, response in cases.items():
        assert 400 <= response.status_code < 500, (reason, response.status_code)
        assert response.json()["error"], reason
    assert cases["too_large"].status_code == 413 and cases["too_many_events"].status_code == 413
    assert cases["bad_prop"].json()["field"] == "p.k"
    assert huge_header.status_code == 431 and huge_header.json()["field"] == "headers"
    assert absurd_url.status_code == 400 and absurd_url.json()["field"] == "u"
    assert still_fine.status_code == 200
    for reason in ("bad_json", "bad_encoding", "too_large", "too_many_events", "bad_prop"):
        assert re.search(rf'ferrite_rejected_requests_total{{.*reason="{reason}".*}} [1-9]\d*\.0',
                         metrics), reason
    assert len(stored(tmp_path / "ferrite.db")) == 1  # only the good hit


async def test_graceful_shutdown_under_load_loses_nothing_acknowledged(tmp_path):
    with ferrite_serve(tmp_path) as server:
        acknowledged: list[str] = []
        failed: list[str] = []

        async def client(worker: int) -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                for i in range(400):
                    name = f"w{worker}-{i}"
                    try:
                        r = await http.post("/api/event", headers=CHROME,
                                            content=json.dumps({"n": name, "u": PAGE}))
                    except httpx.HTTPError:
                        failed.append(name)
                        return
                    if r.status_code == 202:
                        acknowledged.append(name)
                    else:
                        failed.append(name)

        async with trio.open_nursery() as nursery:
            for worker in range(8):
                nursery.start_soon(client, worker)
            while len(acknowledged) < 200:
                await trio.sleep(0.01)
            server.process.send_signal(signal.SIGTERM)
        assert await trio.to_thread.run_sync(server.stop, None) == 0
    names = {r["name"] for r in stored(tmp_path / "ferrite.db")}
    assert len(acknowledged) >= 200
    assert set(acknowledged) <= names, "an acknowledged event is missing"
    assert len(names) == len(acknowledged) + sum(1 for n in failed if n in names)


def test_two_workers_share_one_database_and_one_salt(tmp_path):
    shared = tmp_path / "metrics"
    shared.mkdir()
    with ferrite_serve(tmp_path, "--workers", "2",
                       env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}) as server:

        def burst(n: int) -> None:
            with client(server) as http:
                for _ in range(n):
                    assert http.get("/p.gif", params={"u": PAGE}, headers=CHROME
                                    ).status_code == 200

        import threading

        # The kernel decides which worker accepts a connection: send bursts until both
        # have served hits (each keeps its own counter file in the shared folder).
        sent = 0
        pids: set[str] = set()
        for _ in range(8):
            threads = [threading.Thread(target=burst, args=(40,)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            sent += 160
            time.sleep(1.5)  # each worker publishes every second
            pids = {p.stem.rpartition("_")[2] for p in shared.glob("counter_*.db")}
            if len(pids) == 2:
                break
        assert len(pids) == 2, f"requests were served by {len(pids)} worker process(es)"
        # Every scrape, whichever worker answers it, shows the whole server's count.
        with client(server) as http:
            deadline = time.monotonic() + 10
            while received(http) != sent and time.monotonic() < deadline:
                time.sleep(0.2)
            assert [received(http) for _ in range(12)] == [sent] * 12
            assert 'pid="' not in http.get("/metrics").text
        assert server.stop() == 0
    rows = stored(tmp_path / "ferrite.db")
    assert len(rows) == sent
    assert len({r["session"] for r in rows}) == 1
    assert len(stored(tmp_path / "ferrite.db", "SELECT day FROM ferrite_salts")) == 1


def received(http: httpx.Client) -> float:
    match = re.search(r"^ferrite_received_events_total (\S+)$", http.get("/metrics").text,
                      re.MULTILINE)
    return float(match[1]) if match else 0.0


def test_a_silent_slow_client_is_cut_off_by_the_read_timeout(tmp_path):
    import socket
    from urllib.parse import urlsplit

    config = TRUSTING.replace("[edge]", "[edge]\nread_timeout = 2")
    with ferrite_serve(tmp_path, config=config) as server:
        url = urlsplit(server.url)
        with socket.create_connection((url.hostname, url.port), timeout=15) as sock:
            sock.sendall(b"GET /p.gif?u=https://example.com/ HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            assert sock.recv(1024) == b""  # closed, without an answer
            waited = time.monotonic() - started
        with client(server) as http:  # everyone else is still served
            assert http.get("/healthz").status_code == 200
        assert server.stop() == 0
    assert 1.5 < waited < 10


def test_debug_logs_why_hits_were_discarded_without_ip_or_user_agent(tmp_path):
    curl = "curl/8.5.0"
    with ferrite_serve(tmp_path, "--debug", config='[edge]\nsites = ["example.com"]\n'
                       ) as server, client(server) as http:
        http.get("/p.gif", params={"u": PAGE}, headers={"User-Agent": curl,
                                                        "X-Forwarded-For": "198.51.100.23"})
        http.get("/p.gif", params={"u": "https://elsewhere.example/"}, headers=CHROME)
        assert server.stop() == 0
    text = "\n".join(server.output)
    assert "discarded 'example.com' '/docs': bot:" in text
    assert "discarded 'elsewhere.example': unknown_site" in text
    assert curl not in text and "198.51.100.23" not in text and "127.0.0.1 " not in text
