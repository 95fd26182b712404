"""Every endpoint through the Quart test client (lifespan on, a client address set)."""

from __future__ import annotations

import json
import os
import re

import pytest
import trio

from ferrite import Pipeline, hookimpl, load_config
from ferrite.edge.app import create_app
from ferrite.testing import GOOGLEBOT

from .edge_helpers import CHROME, VISITOR, edge_config, open_edge, stored

PAGE = "https://example.com/pricing?utm_source=hn&secret=1"


async def test_pixel_stores_a_pageview_and_answers_the_gif(tmp_path):
    async with open_edge(tmp_path) as edge:
        response = await edge.get(f"/p.gif?u={PAGE}&r=https://www.google.com/search?q=x")
        body = await response.get_data()
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/gif"
        assert len(body) == 43 and body.startswith(b"GIF89a")
        assert "no-store" in response.headers["Cache-Control"]
    (row,) = stored(edge.db)
    assert (row["site"], row["name"], row["path"], row["source"]) == (
        "example.com", "pageview", "/pricing?utm_source=hn", "search")
    assert (row["browser"], row["os"], row["device"]) == ("Chrome", "Windows", "desktop")


async def test_pixel_defaults_to_the_referer_header_and_its_site(tmp_path):
    async with open_edge(tmp_path) as edge:
        response = await edge.get("/p.gif?n=Newsletter", headers={
            "Referer": "https://www.shop.example/cart"})
        assert response.status_code == 200
    (row,) = stored(edge.db)
    assert (row["site"], row["name"], row["path"]) == ("shop.example", "Newsletter", "/cart")


async def test_pixel_site_parameter(tmp_path):
    async with open_edge(tmp_path) as edge:
        await edge.get("/p.gif?d=example.org&u=https://cdn.example.net/x")
    assert stored(edge.db)[0]["site"] == "example.org"


async def test_pixel_answers_the_gif_for_filtered_hits_too(tmp_path):
    async with open_edge(tmp_path, {"sites": ["example.com"]}) as edge:
        bot = await edge.get(f"/p.gif?u={PAGE}", headers={"User-Agent": GOOGLEBOT})
        other = await edge.get("/p.gif?u=https://elsewhere.example/")
        for response in (bot, other):
            assert response.status_code == 200 and len(await response.get_data()) == 43
        assert edge.metric("discarded", reason="unknown_site") == 1
        assert edge.metric("discarded", reason="bot:spider") == 1
    assert stored(edge.db) == []


async def test_pixel_without_any_page_url_is_a_400_naming_u(tmp_path):
    async with open_edge(tmp_path) as edge:
        response = await edge.get("/p.gif")
        assert response.status_code == 400
        assert (await response.get_json())["field"] == "u"
        assert edge.metric("rejected", reason="missing_url") == 1


async def test_post_one_event_plausible_style(tmp_path):
    payload = {"name": "Signup", "url": PAGE, "domain": "example.com",
               "referrer": "https://t.co/abc", "props": {"plan": "pro", "seats": 3}}
    async with open_edge(tmp_path) as edge:
        response = await edge.post(json=payload)
        assert response.status_code == 202
        assert await response.get_data(as_text=True) == "ok"
        assert response.headers["X-Ferrite-Filtered"] == "0"
    (row,) = stored(edge.db)
    assert (row["name"], row["source"]) == ("Signup", "social")
    assert json.loads(row["props"]) == {"plan": "pro", "seats": 3}


async def test_post_short_field_names_and_text_plain(tmp_path):
    body = json.dumps({"n": "pageview", "u": PAGE, "p": json.dumps({"k": "v"})})
    async with open_edge(tmp_path) as edge:
        response = await edge.post(data=body, headers={"Content-Type": "text/plain"})
        assert response.status_code == 202
    assert json.loads(stored(edge.db)[0]["props"]) == {"k": "v"}


async def test_post_an_array_and_several_domains(tmp_path):
    events = [{"n": "a", "u": PAGE}, {"n": "b", "u": PAGE, "d": "one.example,two.example"}]
    async with open_edge(tmp_path) as edge:
        response = await edge.post(json=events)
        assert response.status_code == 202
    assert sorted((r["name"], r["site"]) for r in stored(edge.db)) == [
        ("a", "example.com"), ("b", "one.example"), ("b", "two.example")]


async def test_filtered_events_are_counted_in_a_header(tmp_path):
    events = [{"n": "a", "u": PAGE}, {"n": "b", "u": "https://nope.example/"}]
    async with open_edge(tmp_path, {"sites": ["example.com"]}) as edge:
        response = await edge.post(json=events)
        assert response.status_code == 202 and response.headers["X-Ferrite-Filtered"] == "1"
        bot = await edge.post(json=events[:1], headers={"User-Agent": GOOGLEBOT})
        assert bot.status_code == 202 and bot.headers["X-Ferrite-Filtered"] == "1"
    assert [r["name"] for r in stored(edge.db)] == ["a"]


@pytest.mark.parametrize(("body", "field", "status"), [
    (b"{not json", "body", 400),
    (b"", "body", 400),
    (b"\xff\xfe{}", "body", 400),
    (b"[]", "body", 400),
    (b"42", "body", 400),
    (b'{"n": "x"}', "u", 400),
    (b'{"u": "ftp://example.com/"}', "u", 400),
    (b'{"u": 7}', "u", 400),
    (b'{"u": "https://example.com/", "n": ""}', "n", 400),
    (b'{"u": "https://example.com/", "n": {"a": 1}}', "n", 400),
    (b'{"u": "https://example.com/", "d": "bad site!"}', "d", 400),
    (b'{"u": "https://example.com/", "p": [1, 2]}', "p", 400),
    (b'{"u": "https://example.com/", "p": {"nested": {"a": 1}}}', "p.nested", 400),
    (b'{"u": "https://example.com/", "p": {"n": null}}', "p.n", 400),
    (b'{"u": "https://example.com/", "p": {"x": NaN}}', "body", 400),
    (b'[{"u": "https://example.com/"}, 3]', "[1]", 400),
    (b'[{"u": "https://example.com/"}, {"n": "x"}]', "[1].u", 400),
])
async def test_bad_input_gets_a_4xx_naming_the_field(tmp_path, body, field, status):
    async with open_edge(tmp_path) as edge:
        response = await edge.post(data=body)
        assert response.status_code == status
        payload = await response.get_json()
        assert payload["field"] == field and payload["error"]
        assert edge.metric("received") == 0
        assert sum(v for (n, _), v in edge.app.extensions["ferrite"]["pipeline"].metrics
                   .counters.items() if n == "rejected") == 1


async def test_limits(tmp_path):
    limits = {"max_events": 2, "max_props": 2, "max_prop_key": 5, "max_prop_value": 10,
              "max_url": 100, "max_body_bytes": 2048}
    event = {"u": "https://example.com/"}
    async with open_edge(tmp_path, limits) as edge:
        async def post(payload):
            response = await edge.post(data=payload if isinstance(payload, bytes)
                                       else json.dumps(payload))
            return response.status_code, (await response.get_json() or {}).get("field")

        assert await post([event] * 3) == (413, "body")
        assert await post({**event, "p": {"a": 1, "b": 2, "c": 3}}) == (400, "p")
        assert await post({**event, "p": {"toolong": 1}}) == (400, "p.toolong")
        assert await post({**event, "p": {"k": "x" * 11}}) == (400, "p.k")
        assert await post({"u": "https://example.com/" + "x" * 100}) == (400, "u")
        assert await post(b'{"u": "https://example.com/", "p": {"k": "' + b"x" * 3000 + b'"}}'
                          ) == (413, "body")
        assert await post([event] * 2) == (202, None)


async def test_cors_preflight_and_headers(tmp_path):
    async with open_edge(tmp_path) as edge:
        response = await edge.client.options("/api/event", headers={
            "Origin": "https://example.com", "Access-Control-Request-Method": "POST"})
        assert response.status_code == 204
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, X-Umami-Cache"


async def test_cors_origins_restrict_who_may_post(tmp_path):
    async with open_edge(tmp_path, {"cors_origins": ["https://example.com"]}) as edge:
        ok = await edge.post(json={"u": PAGE}, headers={"Origin": "https://example.com"})
        assert ok.status_code == 202
        assert ok.headers["Access-Control-Allow-Origin"] == "https://example.com"
        bad = await edge.post(json={"u": PAGE}, headers={"Origin": "https://evil.example"})
        assert bad.status_code == 403 and (await bad.get_json())["field"] == "Origin"
        assert "Access-Control-Allow-Origin" not in bad.headers
    assert len(stored(edge.db)) == 1


async def test_script_is_served_with_an_etag(tmp_path):
    async with open_edge(tmp_path) as edge:
        first = await edge.get("/script.js")
        assert first.status_code == 200
        assert "javascript" in first.headers["Content-Type"]
        etag = first.headers["ETag"]
        again = await edge.get("/script.js", headers={"If-None-Match": etag})
        assert again.status_code == 304


async def test_health_readiness_and_metrics(tmp_path):
    async with open_edge(tmp_path) as edge:
        assert (await edge.get("/healthz")).status_code == 200
        ready = await edge.get("/readyz")
        assert ready.status_code == 200 and (await ready.get_json())["ready"] is True
        await edge.get(f"/p.gif?u={PAGE}")
        await edge.get(f"/p.gif?u={PAGE}", headers={"User-Agent": GOOGLEBOT})
        await edge.post(data=b"nope")
        text = await (await edge.get("/metrics")).get_data(as_text=True)
    samples = {line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}
    pid = f'pid="{os.getpid()}"'
    for sample in (f"ferrite_received_events_total{{{pid}}}",
                   f'ferrite_sent_events_total{{component="sqlite",{pid},stage="write"}}',
                   f'ferrite_discarded_events_total{{{pid},reason="bot:spider"}}',
                   f'ferrite_rejected_requests_total{{{pid},reason="bad_json"}}',
                   f"ferrite_queue_depth{{{pid}}}", "ferrite_batch_events_count"):
        assert sample in samples, sample


async def test_unknown_path_and_method_are_json_errors(tmp_path):
    async with open_edge(tmp_path) as edge:
        missing = await edge.get("/nope")
        assert missing.status_code == 404 and "error" in await missing.get_json()
        wrong = await edge.client.delete("/api/event")
        assert wrong.status_code == 405


async def test_sessions_same_visitor_same_session_different_visitor_not(tmp_path):
    async with open_edge(tmp_path) as edge:
        await edge.get(f"/p.gif?u={PAGE}")
        await edge.post(json={"n": "Click", "u": PAGE})
        await edge.get(f"/p.gif?u={PAGE}", client={"client": ("198.51.100.9", 1)})
    sessions = [r["session"] for r in stored(edge.db)]
    assert sessions[0] == sessions[1] != sessions[2]


async def test_ack_queued_answers_before_storing_but_stores(tmp_path):
    async with open_edge(tmp_path, {"ack": "queued"}) as edge:
        response = await edge.post(json={"u": PAGE})
        assert response.status_code == 202
    assert len(stored(edge.db)) == 1  # the shutdown drained the queue


class GatedSink:
    """A sink that blocks until the test opens its gate, or fails while `broken` is set."""

    def __init__(self) -> None:
        import threading

        self.gate = threading.Event()
        self.broken = False
        self.events: list = []

    @hookimpl
    def ferrite_write(self, events):
        self.gate.wait(10)
        if self.broken:
            raise OSError("disk unplugged")
        self.events.extend(events)


def gated_edge(tmp_path, sink, pipeline_table=None, **edge):
    data = edge_config(tmp_path / "f.db", edge)
    data["pipeline"].update(pipeline_table or {})
    config = load_config(data=data)
    pipeline = Pipeline(config, extra_plugins=[("gated", sink)])
    return create_app(config, pipeline=pipeline)


async def test_a_full_queue_answers_503_with_retry_after_and_recovers(tmp_path):
    sink = GatedSink()
    # One batch in the sink, one in its buffer, one waiting in the writer, one queued.
    app = gated_edge(tmp_path, sink, {"sink_buffer_batches": 1}, queue_size=1, retry_after=7)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        answers: list[int] = []

        async def post(i: int) -> None:
            response = await client.post("/api/event", json={"n": f"e{i}", "u": PAGE},
                                         headers=CHROME, scope_base=VISITOR)
            answers.append(response.status_code)
            if response.status_code == 503:
                assert response.headers["Retry-After"] == "7"

        async with trio.open_nursery() as nursery:
            for i in range(6):
                nursery.start_soon(post, i)
                await trio.sleep(0.05)
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert "the queue is full" in (await ready.get_json())["problems"]
            sink.gate.set()
        assert sorted(answers) == [202, 202, 202, 202, 503, 503]
        metrics = app.extensions["ferrite"]["pipeline"].metrics
        assert metrics.get("overloaded") == 2
        after = await client.post("/api/event", json={"n": "later", "u": PAGE},
                                  headers=CHROME, scope_base=VISITOR)
        assert after.status_code == 202
        assert (await client.get("/readyz")).status_code == 200
    assert sorted(e.name for e in sink.events) == ["e0", "e1", "e2", "e3", "later"]


async def test_a_failing_sink_is_spooled_acknowledged_and_shown_until_it_recovers(tmp_path):
    sink = GatedSink()
    sink.gate.set()
    sink.broken = True
    app = gated_edge(tmp_path, sink)
    pipeline = app.extensions["ferrite"]["pipeline"]
    async with app.test_app() as test_app:
        client = test_app.test_client()
        spooled = await client.post("/api/event", json={"n": "spooled", "u": PAGE},
                                    headers=CHROME, scope_base=VISITOR)
        assert spooled.status_code == 202  # in the spool on disk: acknowledged, not lost
        ready = await client.get("/readyz")
        body = await ready.get_json()
        assert ready.status_code == 503
        assert body["problems"] == ["sink gated is failing: OSError: disk unplugged"]
        assert body["dead_letters"] == {"gated": 1}
        metrics = await (await client.get("/metrics")).get_data(as_text=True)
        assert re.search(r'ferrite_sink_failing\{component="gated",pid="\d+"\} 1\.0', metrics)
        assert re.search(r'ferrite_dead_lettered_events_total\{component="gated",pid="\d+",'
                         r'stage="write"\} 1\.0', metrics)
        assert re.search(r'ferrite_sink_retries_total\{component="gated",pid="\d+",'
                         r'stage="write"\} 3\.0', metrics)
        sink.broken = False
        ok = await client.post("/api/event", json={"n": "later", "u": PAGE}, headers=CHROME,
                               scope_base=VISITOR)
        assert ok.status_code == 202
        assert (await client.get("/readyz")).status_code == 200
        assert await trio.to_thread.run_sync(pipeline.replay) == {"gated": (1, 0)}
    assert sorted(e.name for e in sink.events) == ["later", "spooled"]


async def test_without_a_spool_a_failing_sink_answers_503(tmp_path):
    sink = GatedSink()
    sink.gate.set()
    sink.broken = True
    data = edge_config(tmp_path / "f.db")
    data["pipeline"]["spool_dir"] = ""
    config = load_config(data=data)
    app = create_app(config, pipeline=Pipeline(config, extra_plugins=[("gated", sink)]))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        failed = await client.post("/api/event", json={"u": PAGE}, headers=CHROME,
                                   scope_base=VISITOR)
        assert failed.status_code == 503 and failed.headers["Retry-After"] == "1"
        body = await (await client.get("/readyz")).get_json()
        assert "batches cannot be stored: SinkError" in body["problems"]


async def test_fragment_is_a_route_only_with_the_hash_flag(tmp_path):
    async with open_edge(tmp_path) as edge:
        await edge.post(json=[{"n": "a", "u": "https://example.com/app#/settings", "h": 1},
                              {"n": "b", "u": "https://example.com/app#section-2"}])
    paths = {r["name"]: r["path"] for r in stored(edge.db)}
    assert paths == {"a": "/app#/settings", "b": "/app"}
