"""The product's promise: no IP address and no full user agent reaches storage."""

from __future__ import annotations

import ipaddress
import json
import types

from ferrite import Pipeline, hookimpl, load_config
from ferrite.testing import make_hit

IPS = ["203.0.113.77", "2001:db8:beef::1234", "198.51.100.201"]
UAS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 PrivacyProbe/7",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.5 Mobile/15E148 Safari/604.1 PrivacyProbe/8",
    "PrivacyProbeBot/1.0 (+https://probe.example/bot)",  # a bot, kept in the bots table
]


def everything(folder) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def forms(ip: str) -> list[bytes]:
    packed = ipaddress.ip_address(ip).packed
    return [ip.encode(), ip.encode("utf-16-le"), packed, ipaddress.ip_address(ip).exploded.encode()]


def test_no_ip_or_user_agent_anywhere_in_the_database_files(tmp_path):
    db = tmp_path / "ferrite.db"
    jsonl = tmp_path / "events.jsonl"
    config = load_config(data={
        "pipeline": {"plugins": ["client_ip", "useragent", "bots", "session", "referrer",
                                 "sqlite", "jsonl"], "spool_dir": str(tmp_path / "spool"),
                     "retry_initial_seconds": 0},
        "plugins": {"client_ip": {"trusted_proxies": ["10.0.0.0/8"]},
                    "sqlite": {"path": str(db), "keep_bots": True},
                    "jsonl": {"path": str(jsonl), "include_bots": True}},
    })
    hits = []
    for i, ip in enumerate(IPS):
        for ua in UAS:
            hits.append(make_hit(f"https://example.com/p{i}?ip={ip}", ip="10.0.0.2",
                                 user_agent=ua, referrer=f"https://ref.example/?ua={ua}",
                                 headers={"x-forwarded-for": ip, "cookie": f"c={ip}"},
                                 props={"n": i}))
    broken = types.ModuleType("broken")  # a sink whose batches all end in the spool
    broken.ferrite_write = hookimpl(lambda events: 1 / 0)
    broken.ferrite_write_bots = hookimpl(lambda events: 1 / 0)
    with Pipeline(config, extra_plugins=[("broken", broken)]) as pipeline:
        pipeline.run(hits)
        assert pipeline.metrics.get("sent", component="sqlite", stage="write") == 6
        assert pipeline.metrics.get("dead_lettered", component="broken", stage="write") == 6
        # Inspect the files while the connection is still open (WAL not yet checkpointed) too.
        open_bytes = everything(tmp_path)
    closed_bytes = everything(tmp_path)
    assert (tmp_path / "spool" / "broken.jsonl").exists()
    assert (tmp_path / "spool" / "broken.bots.jsonl").exists()
    for blob in (open_bytes, closed_bytes):
        for ip in IPS:
            for form in forms(ip):
                assert form not in blob, f"{ip} found in storage"
        for ua in UAS:
            assert ua.encode() not in blob
            assert b"PrivacyProbe/" not in blob
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(records) == 9 and all("url" not in r for r in records)
