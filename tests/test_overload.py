"""A burst far above capacity gets fast 503s, memory stays flat, and service recovers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import trio

from ferrite.testing import DESKTOP_CHROME

from .edge_helpers import assert_private, ferrite_serve, stored

pytestmark = pytest.mark.slow

SLOW_SINK = '''
import time
import ferrite

@ferrite.hookimpl
def ferrite_write(events):
    time.sleep(0.05)  # storage that manages about 20 batches a second
'''
CONFIG = """
[pipeline]
plugins = ["client_ip", "useragent", "bots", "session", "referrer", "sqlite", "slow_sink"]
sink_buffer_batches = 1
[edge]
queue_size = 4
retry_after = 2
"""


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024


async def test_burst_gets_503s_not_timeouts_and_service_recovers(tmp_path):
    (tmp_path / "slow_sink.py").write_text(SLOW_SINK)
    with ferrite_serve(tmp_path, config=CONFIG, env={"PYTHONPATH": str(tmp_path)}) as server:
        pid = server.process.pid
        answers: list[int] = []
        retry_after: set[str] = set()

        async def client(worker: int) -> None:
            async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
                for i in range(40):
                    response = await http.post(
                        "/api/event", headers={"User-Agent": DESKTOP_CHROME},
                        content=json.dumps({"n": f"burst-{worker}-{i}", "u": "https://example.com/"}))
                    answers.append(response.status_code)
                    if response.status_code == 503:
                        retry_after.add(response.headers.get("Retry-After", ""))

        before = rss_mb(pid)
        peak = before
        with trio.fail_after(60):  # no request hangs: every one is answered, fast
            async with trio.open_nursery() as nursery:
                for worker in range(48):
                    nursery.start_soon(client, worker)
                while len(answers) < 48 * 40:
                    peak = max(peak, rss_mb(pid))
                    await trio.sleep(0.05)
        async with httpx.AsyncClient(base_url=server.url) as http:
            await trio.sleep(0.5)  # the queue drains
            ready = await http.get("/readyz")
            after = await http.post("/api/event", headers={"User-Agent": DESKTOP_CHROME},
                                    content=json.dumps({"n": "after", "u": "https://example.com/"}))
            metrics = (await http.get("/metrics")).text
        assert server.stop() == 0
    assert set(answers) <= {202, 503}
    assert answers.count(503) > len(answers) / 2, "the burst should be far above capacity"
    assert answers.count(202) > 0
    assert retry_after == {"2"}
    assert peak - before < 40, f"memory grew from {before:.0f} to {peak:.0f} MB under the burst"
    assert ready.status_code == 200 and after.status_code == 202
    assert re.search(r"ferrite_overloaded_requests_total\{pid=\"\d+\"\} (\d+)", metrics)
    names = {r["name"] for r in stored(tmp_path / "ferrite.db")}
    assert "after" in names and len(names) == answers.count(202) + 1
    assert_private(tmp_path, "127.0.0.1", DESKTOP_CHROME, server.output)
