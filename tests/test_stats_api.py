"""The Stats API over a real socket: `ferrite serve` on port 0, keys made with `ferrite
keys`, answers checked field by field against Plausible's documented v1 and v2 shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from .edge_helpers import ferrite_serve
from .stats_helpers import event, write
from .test_stats_engine import fixture_events

pytestmark = pytest.mark.slow
RANGE = ["2026-03-01", "2026-03-02"]


def ferrite(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ferrite", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def new_key(cwd: Path, *sites: str) -> str:
    out = ferrite(cwd, "keys", "create", *(a for s in sites for a in ("--site", s)),
                  "--name", "test")
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("api")
    now = datetime.now(UTC)
    write(cwd / "ferrite.db", [*fixture_events(),
                               event((now - timedelta(minutes=1)).isoformat(), "R", "/live")])
    config = ('[plugins.sqlite]\npath = "ferrite.db"\n'
              '[stats]\nrate_limit_per_hour = 1000\nrollup_interval_seconds = 0\n')
    (cwd / "ferrite.toml").write_text(config)
    keys = {"ex": new_key(cwd, "ex.com"), "other": new_key(cwd, "other.org")}
    revoked = new_key(cwd, "ex.com")
    listing = ferrite(cwd, "keys", "list", "--json")
    rid = [k["id"] for k in json.loads(listing.stdout)][-1]
    assert ferrite(cwd, "keys", "revoke", rid).returncode == 0
    keys["revoked"] = revoked
    with ferrite_serve(cwd) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client, keys, cwd


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_v2_query_has_plausibles_shape(served):
    client, keys, _ = served
    body = {"site_id": "ex.com", "metrics": ["visitors", "pageviews", "bounce_rate"],
            "date_range": RANGE, "dimensions": ["event:page"],
            "include": {"total_rows": True}, "pagination": {"limit": 2, "offset": 0}}
    r = client.post("/api/v2/query", json=body, headers=auth(keys["ex"]))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    data = r.json()
    assert set(data) == {"results", "meta", "query"}
    assert data["results"] == [{"metrics": [3, 3, 33.0], "dimensions": ["/"]},
                               {"metrics": [2, 2, 100.0], "dimensions": ["/blog"]}]
    assert data["meta"] == {"total_rows": 4}
    assert data["query"] == {
        "site_id": "ex.com", "metrics": ["visitors", "pageviews", "bounce_rate"],
        "date_range": ["2026-03-01T00:00:00+00:00", "2026-03-02T23:59:59+00:00"],
        "filters": [], "dimensions": ["event:page"], "order_by": [["visitors", "desc"]],
        "include": {"total_rows": True}, "pagination": {"limit": 2, "offset": 0}}


def test_v2_aggregate_and_time_series(served):
    client, keys, _ = served
    agg = client.post("/api/v2/query", headers=auth(keys["ex"]), json={
        "site_id": "www.ex.com", "metrics": ["visitors", "events"], "date_range": RANGE})
    assert agg.json()["results"] == [{"metrics": [4, 9], "dimensions": []}]
    ts = client.post("/api/v2/query", headers=auth(keys["ex"]), json={
        "site_id": "ex.com", "metrics": ["visitors"], "date_range": RANGE,
        "dimensions": ["time:day"], "filters": [["is", "visit:os", ["Linux", "iOS"]]]})
    data = ts.json()
    assert data["results"] == [{"metrics": [1, ], "dimensions": ["2026-03-01"]},
                               {"metrics": [2], "dimensions": ["2026-03-02"]}]
    assert data["query"]["order_by"] == [["time:day", "asc"], ["visitors", "desc"]]


def test_v1_endpoints_have_plausibles_shapes(served):
    client, keys, _ = served
    h = auth(keys["ex"])
    base = {"site_id": "ex.com", "period": "custom", "date": ",".join(RANGE)}
    r = client.get("/api/v1/stats/aggregate", headers=h,
                   params={**base, "metrics": "visitors,pageviews,bounce_rate,visit_duration"})
    assert r.json() == {"results": {"visitors": {"value": 4}, "pageviews": {"value": 8},
                                    "bounce_rate": {"value": 60.0},
                                    "visit_duration": {"value": 744}}}
    r = client.get("/api/v1/stats/aggregate", headers=h,
                   params={"site_id": "ex.com", "period": "day", "date": "2026-03-02",
                           "compare": "previous_period"})
    assert r.json() == {"results": {"visitors": {"value": 2, "change": 0}}}
    r = client.get("/api/v1/stats/timeseries", headers=h, params=base)
    assert r.json() == {"results": [{"date": "2026-03-01", "visitors": 2},
                                    {"date": "2026-03-02", "visitors": 2}]}
    r = client.get("/api/v1/stats/timeseries", headers=h,
                   params={"site_id": "ex.com", "period": "7d", "date": "2026-03-02"})
    assert r.json()["results"][0]["date"] == "2026-02-24"
    assert r.json()["results"][-1] == {"date": "2026-03-02", "visitors": 2}
    r = client.get("/api/v1/stats/breakdown", headers=h,
                   params={**base, "property": "visit:source", "limit": "2", "page": "1",
                           "metrics": "visitors,bounce_rate"})
    assert r.json() == {"results": [
        {"source": "Direct / None", "visitors": 3, "bounce_rate": 67.0},
        {"source": "Google", "visitors": 1, "bounce_rate": 0.0}]}
    r = client.get("/api/v1/stats/breakdown", headers=h,
                   params={**base, "property": "event:page",
                           "filters": "event:page==/pricing|/blog*;visit:browser!=Chrome"})
    assert r.json() == {"results": [{"page": "/pricing", "visitors": 2},
                                    {"page": "/blog", "visitors": 1},
                                    {"page": "/blog#comments", "visitors": 1}]}
    r = client.get("/api/v1/stats/realtime/visitors", headers=h,
                   params={"site_id": "ex.com"})
    assert r.status_code == 200 and r.json() == 1


@pytest.mark.parametrize(("headers", "status", "words"), [
    ({}, 401, "missing API key"),
    ({"Authorization": "Basic abc"}, 401, "missing API key"),
    ({"Authorization": "Bearer fer_wrong"}, 401, "invalid API key"),
    ("revoked", 401, "invalid API key"),
    ("other", 403, "cannot read 'ex.com'"),
])
def test_auth(served, headers, status, words):
    client, keys, _ = served
    if isinstance(headers, str):
        headers = auth(keys[headers])
    body = {"site_id": "ex.com", "metrics": ["visitors"], "date_range": "7d"}
    for r in (client.post("/api/v2/query", json=body, headers=headers),
              client.get("/api/v1/stats/aggregate", params={"site_id": "ex.com"},
                         headers=headers)):
        assert r.status_code == status
        assert words in r.json()["error"]


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "field"), [
    ("POST", "/api/v2/query", {"content": b"{not json"}, 400, "body"),
    ("POST", "/api/v2/query", {"content": b"[1, 2]"}, 400, "site_id"),
    ("POST", "/api/v2/query", {"json": {"site_id": "ex.com", "metrics": ["nope"],
                                        "date_range": "7d"}}, 400, "metrics[0]"),
    ("POST", "/api/v2/query", {"json": {"site_id": "ex.com", "metrics": ["visitors"]}},
     400, "date_range"),
    ("POST", "/api/v2/query", {"json": {"site_id": "ex.com", "metrics": ["visitors"],
                                        "date_range": "7d", "filters": [
                                            ["matches", "event:page", ["x" * 5000]]]}},
     400, "filters[0][2][0]"),
    ("POST", "/api/v2/query", {"content": b"{" + b" " * 70_000 + b"}"}, 413, "body"),
    ("GET", "/api/v1/stats/aggregate", {"params": {"site_id": "ex.com", "period": "2w"}},
     400, "period"),
    ("GET", "/api/v1/stats/aggregate", {"params": {"site_id": "ex.com", "perod": "7d"}},
     400, "perod"),
    ("GET", "/api/v1/stats/breakdown", {"params": {"site_id": "ex.com"}}, 400, "property"),
    ("GET", "/api/v1/stats/aggregate", {"params": {"period": "7d"}}, 400, "site_id"),
    ("POST", "/api/v2/query", {"json": {"metrics": ["visitors"]}}, 400, "site_id"),
    ("GET", "/api/v1/stats/breakdown", {"params": {"site_id": "ex.com", "property":
                                                   "event:page", "limit": "5000"}},
     400, "limit"),
    ("GET", "/api/v1/stats/aggregate", {"params": {"site_id": "ex.com", "filters":
                                                   "event:page"}}, 400, "filters[0]"),
    ("GET", "/api/v1/stats/timeseries", {"params": {"site_id": "ex.com", "period": "custom",
                                                    "date": "2026-13-01,2026-13-02"}},
     400, "date"),
])
def test_bad_input_is_a_4xx_naming_the_field_and_is_counted(served, method, path, kwargs,
                                                            status, field):
    client, keys, _ = served
    r = client.request(method, path, headers={**auth(keys["ex"]),
                                              "Content-Type": "application/json"}, **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["field"] == field
    assert r.json()["error"]
    metrics = client.get("/metrics").text
    assert 'ferrite_rejected_requests_total{' in metrics
    assert 'reason="stats_bad_query"' in metrics or status == 413


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    write(tmp_path / "ferrite.db", fixture_events())
    (tmp_path / "ferrite.toml").write_text(
        '[plugins.sqlite]\npath = "ferrite.db"\n[stats]\nrate_limit_per_hour = 2\n')
    key = new_key(tmp_path, "ex.com")
    with ferrite_serve(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        params = {"site_id": "ex.com"}
        codes = [client.get("/api/v1/stats/aggregate", params=params, headers=auth(key))
                 for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        assert int(codes[2].headers["Retry-After"]) >= 1
        assert "too many requests" in codes[2].json()["error"]
        # the hits keep flowing
        assert client.get("/p.gif", params={"u": "https://ex.com/"}).status_code == 200


def test_stats_can_be_switched_off_on_collection_nodes(tmp_path):
    (tmp_path / "ferrite.toml").write_text("[stats]\nenabled = false\n")
    with ferrite_serve(tmp_path) as server, httpx.Client(base_url=server.url) as client:
        r = client.post("/api/v2/query", json={})
        assert r.status_code == 404
        assert client.get("/api/v1/stats/aggregate").status_code == 404


def heavy_events(n: int) -> list:
    return [event(f"2026-03-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
                  f"s{i % 5000}", f"/p/{i % 997}", browser=("Firefox", "Chrome")[i % 2])
            for i in range(n)]


HEAVY = {"site_id": "ex.com", "metrics": ["visitors", "bounce_rate"],
         "date_range": ["2026-03-01", "2026-03-01"], "dimensions": ["visit:entry_page"],
         "filters": [["matches", "event:page", ["^/p/[0-9]+$"]],
                     ["is_not", "visit:browser", ["Safari"]]]}


def test_a_slow_query_never_delays_a_hit(tmp_path):
    """The query runs in a worker thread on its own connection: a hit sent after it
    started is stored and answered while the query is still running."""
    import threading
    import time

    write(tmp_path / "ferrite.db", heavy_events(60_000))
    (tmp_path / "ferrite.toml").write_text(
        '[plugins.sqlite]\npath = "ferrite.db"\n[stats]\nrollup_interval_seconds = 0\n')
    key = new_key(tmp_path, "ex.com")
    done: list[str] = []
    with ferrite_serve(tmp_path) as server, httpx.Client(base_url=server.url,
                                                         timeout=60) as client:
        def query() -> None:
            r = client.post("/api/v2/query", json=HEAVY, headers=auth(key))
            assert r.status_code == 200, r.text
            done.append("query")

        worker = threading.Thread(target=query)
        worker.start()
        time.sleep(0.15)  # the query is under way (it takes about a second here)
        hit = client.get("/p.gif", params={"u": "https://ex.com/during-the-query"},
                         headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) "
                                  "Gecko/20100101 Firefox/128.0"})
        assert hit.status_code == 200
        done.append("hit")
        worker.join()
    assert done == ["hit", "query"]


def test_a_query_over_its_time_limit_is_a_503_naming_the_limit(tmp_path):
    write(tmp_path / "ferrite.db", heavy_events(30_000))
    (tmp_path / "ferrite.toml").write_text(
        '[plugins.sqlite]\npath = "ferrite.db"\n'
        '[stats]\nquery_timeout_seconds = 0.01\nrollup_interval_seconds = 0\n')
    key = new_key(tmp_path, "ex.com")
    with ferrite_serve(tmp_path) as server, httpx.Client(base_url=server.url,
                                                         timeout=60) as client:
        r = client.post("/api/v2/query", json=HEAVY, headers=auth(key))
        assert r.status_code == 503
        assert "longer than 0.01 s" in r.json()["error"]
        assert r.headers["Retry-After"]
        assert client.get("/healthz").status_code == 200
