"""Sinks that fail transiently, fail fatally, hang and are slow, beside a real SQLite sink:
the others keep storing, every request is acknowledged, and after recovery and a replay
every acknowledged event is in every sink exactly once."""

from __future__ import annotations

import threading
import time

import trio

from ferrite import FatalSinkError, Pipeline, hookimpl, load_config
from ferrite.edge.app import create_app

from .edge_helpers import CHROME, VISITOR, assert_private, edge_config, stored

PAGE = "https://example.com/faults"


class Sink:
    """Keeps events by id, as real sinks do, so a replay never counts twice."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.by_id: dict[str, str] = {}
        self.calls = 0
        self.lock = threading.Lock()

    def keep(self, events) -> None:
        with self.lock:
            self.by_id.update((e.id, e.name) for e in events)


class Flaky(Sink):
    @hookimpl
    def ferrite_write(self, events):
        self.calls += 1
        if self.calls <= 2:
            raise OSError("connection reset")
        self.keep(events)


class Doomed(Sink):
    recovered = False

    @hookimpl
    def ferrite_write(self, events):
        self.calls += 1
        if not self.recovered:
            raise FatalSinkError("schema mismatch")
        self.keep(events)


class Hanging(Sink):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.release = threading.Event()

    @hookimpl
    def ferrite_write(self, events):
        self.calls += 1
        self.release.wait(30)  # the first call hangs until the test releases it
        self.keep(events)


class Slow(Sink):
    @hookimpl
    def ferrite_write(self, events):
        self.calls += 1
        time.sleep(0.2)
        self.keep(events)


async def test_faulty_sinks_do_not_stall_the_others_and_nothing_is_lost(tmp_path):
    sinks = [Flaky("flaky"), Doomed("doomed"), Hanging("hanging"), Slow("slow")]
    data = edge_config(tmp_path / "f.db")
    data["pipeline"].update(sink_timeout_seconds=0.5, retry_attempts=3,
                            retry_initial_seconds=0.01)
    config = load_config(data=data)
    pipeline = Pipeline(config, extra_plugins=[(s.name, s) for s in sinks])
    app = create_app(config, pipeline=pipeline)
    names = [f"e{i}" for i in range(20)]
    async with app.test_app() as test_app:
        client = test_app.test_client()
        answers: dict[str, int] = {}

        async def post(name: str) -> None:
            response = await client.post("/api/event", json={"n": name, "u": PAGE},
                                         headers=CHROME, scope_base=VISITOR)
            answers[name] = response.status_code

        with trio.fail_after(20):
            async with trio.open_nursery() as nursery:
                for name in names:
                    nursery.start_soon(post, name)
                    await trio.sleep(0.02)
        assert set(answers.values()) == {202}, answers  # stored or spooled: acknowledged
        # The real sink has everything while the hanging sink is still stuck.
        assert sorted(r["name"] for r in stored(tmp_path / "f.db")) == sorted(names)
        flaky, doomed, hanging, slow = sinks
        assert sorted(flaky.by_id.values()) == sorted(names)
        assert sorted(slow.by_id.values()) == sorted(names)
        assert doomed.by_id == {} and hanging.by_id == {}
        ready = await (await client.get("/readyz")).get_json()
        assert set(ready["dead_letters"]) == {"doomed", "hanging"}
        assert {p.split()[1] for p in ready["problems"]} == {"doomed", "hanging"}

        hanging.release.set()  # the stuck write returns; the sink works again
        doomed.recovered = True
        await trio.sleep(0.2)
        results = await trio.to_thread.run_sync(pipeline.replay)
        assert results["doomed"] == (20, 0) and results["hanging"][1] == 0
    for sink in sinks:
        assert sorted(sink.by_id.values()) == sorted(names), sink.name
    rows = stored(tmp_path / "f.db")
    assert len(rows) == len({r["id"] for r in rows}) == 20
    assert_private(tmp_path, VISITOR["client"][0], CHROME["User-Agent"])  # spool included
