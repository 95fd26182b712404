"""Random bodies, query strings and headers at every endpoint: never a 5xx, never garbage
stored. Property-based with hypothesis, against the real app (lifespan and SQLite on)."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .edge_helpers import VISITOR, open_edge, stored

SITE = re.compile(r"^[a-z0-9.-]+(:\d+)?$")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12,
)
event_like = st.fixed_dictionaries({}, optional={
    "n": st.text(max_size=40) | json_values,
    "u": st.sampled_from(["https://example.com/", "http://a.example/x?y=1#z", "", "ftp://x",
                          "https://[::1/", "https://ex ample.com/"]) | st.text(max_size=60),
    "d": st.sampled_from(["example.com", "a.example,b.example", "", "bad site"])
    | st.text(max_size=20),
    "r": st.text(max_size=60) | json_values,
    "p": json_values | st.text(max_size=40),
    "h": json_values,
})
bodies = (st.binary(max_size=300)
          | event_like.map(lambda e: json.dumps(e).encode())
          | st.lists(event_like, max_size=4).map(lambda e: json.dumps(e).encode()))
header_values = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126),
                        max_size=200)
headers = st.dictionaries(
    st.sampled_from(["User-Agent", "Referer", "X-Forwarded-For", "Forwarded", "Origin",
                     "Content-Type", "Sec-Purpose", "X-Junk"]), header_values, max_size=5)
queries = st.dictionaries(st.sampled_from(["u", "r", "n", "d", "zz"]), st.text(max_size=80),
                          max_size=5)

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def check_rows(db) -> None:
    for row in stored(db):
        assert SITE.match(row["site"]), row["site"]
        assert row["path"].startswith("/") and "?" not in row["path"].replace("?utm_", "")
        assert row["name"] and len(row["name"]) <= 120
        if row["props"]:
            props = json.loads(row["props"])
            assert isinstance(props, dict)
            assert all(isinstance(v, str | int | float | bool) for v in props.values())


@contextlib.contextmanager
def edge_in_a_thread(tmp_path, **edge_settings):
    """The app under its test client in a trio loop of its own, so synchronous hypothesis
    tests can call it example after example without restarting it."""
    ready: queue.Queue = queue.Queue()

    async def main() -> None:
        stop = trio.Event()
        async with open_edge(tmp_path, edge_settings or None) as edge:
            ready.put((edge, trio.lowlevel.current_trio_token(), stop))
            await stop.wait()

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    edge, token, stop = ready.get(timeout=30)

    def call(fn, **kwargs):
        async def run():
            return await fn(**kwargs)
        return trio.from_thread.run(run, trio_token=token)

    try:
        yield edge, call
    finally:
        trio.from_thread.run_sync(stop.set, trio_token=token)
        thread.join(30)


def fuzz_posts(tmp_path, path: str, body_strategy, **edge_settings) -> None:
    """Random bodies and headers posted to `path`: never a 5xx, every error names a field,
    every stored row keeps the schema's promises."""
    with edge_in_a_thread(tmp_path, **edge_settings) as (edge, call):
        calls: list[int] = []

        @FUZZ
        @given(body=body_strategy, extra=headers)
        def one(body, extra):
            calls.append(1)
            response = call(edge.client.post, path=path, data=body, headers=extra,
                            scope_base=VISITOR)
            assert response.status_code < 500, (response.status_code, body, extra)
            if response.status_code >= 400:
                payload = call(response.get_json)
                assert payload["error"] and "field" in payload

        one()
        assert len(calls) >= 100
    check_rows(edge.db)


def test_fuzz_post_event(tmp_path):
    fuzz_posts(tmp_path, "/api/event", bodies)


def test_fuzz_pixel_and_other_endpoints(tmp_path):
    with edge_in_a_thread(tmp_path) as (edge, call):
        @FUZZ
        @given(query=queries, extra=headers,
               path=st.sampled_from(["/p.gif", "/script.js", "/healthz", "/readyz", "/metrics",
                                     "/api/event", "/nope", "/p.gif/x"]))
        def one(query, extra, path):
            calls.append(1)
            response = call(edge.client.get, path=path, query_string=query, headers=extra,
                            scope_base=VISITOR)
            assert response.status_code < 500, (path, query, extra)

        calls: list[int] = []
        one()
        assert len(calls) >= 100
    check_rows(edge.db)


umami_payloads = st.fixed_dictionaries({}, optional={
    "website": st.sampled_from(["94db1cb1-74f4-4a40-ad6c-962362670409", "", "nope"])
    | json_values,
    "hostname": st.sampled_from(["example.com", "", "ex ample.com"]) | json_values,
    "url": st.sampled_from(["/", "/a?b=1", "https://example.com/x", "//x", ""]) | json_values,
    "referrer": st.text(max_size=60) | json_values,
    "name": st.text(max_size=40) | json_values,
    "data": json_values,
    "title": json_values,
})
umami_bodies = (st.binary(max_size=200)
                | st.fixed_dictionaries({"type": st.sampled_from(["event", "identify", "x"])
                                         | json_values,
                                         "payload": umami_payloads | json_values})
                .map(lambda e: json.dumps(e).encode()))


def test_fuzz_umami_send(tmp_path):
    fuzz_posts(tmp_path, "/api/send", umami_bodies,
               umami_websites={"94db1cb1-74f4-4a40-ad6c-962362670409": "example.com"})
