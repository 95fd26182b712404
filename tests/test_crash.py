"""Nothing acknowledged is lost when `ferrite serve` is killed with SIGKILL under load."""

from __future__ import annotations

import json
import signal

import httpx
import pytest
import trio

from ferrite.testing import DESKTOP_CHROME

from .edge_helpers import assert_private, ferrite_serve, stored

pytestmark = pytest.mark.slow
PAGE = "https://example.com/crash-test"


async def load_until_killed(server, prefix: str, kill_after: int) -> set[str]:
    """Eight clients post uniquely named events; after `kill_after` acknowledgements the
    server gets SIGKILL. Returns the names that were answered 202."""
    acknowledged: set[str] = set()

    async def client(worker: int) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            for i in range(10_000):
                name = f"{prefix}-{worker}-{i}"
                try:
                    response = await http.post("/api/event", headers={"User-Agent": DESKTOP_CHROME},
                                               content=json.dumps([{"n": name, "u": PAGE}]))
                except httpx.HTTPError:
                    return  # the server is gone
                if response.status_code == 202:
                    acknowledged.add(name)

    async with trio.open_nursery() as nursery:
        for worker in range(8):
            nursery.start_soon(client, worker)
        while len(acknowledged) < kill_after:
            await trio.sleep(0.005)
        server.process.send_signal(signal.SIGKILL)
    return acknowledged


async def test_sigkill_mid_stream_repeatedly_loses_nothing_acknowledged(tmp_path):
    acknowledged: set[str] = set()
    for round_ in range(4):
        with ferrite_serve(tmp_path) as server:
            acknowledged |= await load_until_killed(server, f"r{round_}", 150 + 50 * round_)
            assert await trio.to_thread.run_sync(server.stop, None) == -signal.SIGKILL
    # A last start proves the database opens cleanly after the crashes (WAL recovery).
    with ferrite_serve(tmp_path) as server:
        assert server.stop() == 0
    names = [r["name"] for r in stored(tmp_path / "ferrite.db")]
    assert len(names) == len(set(names)), "an event was stored twice"
    missing = acknowledged - set(names)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    assert len(acknowledged) >= 4 * 150
    assert_private(tmp_path, "127.0.0.1", DESKTOP_CHROME, server.output)
