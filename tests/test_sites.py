"""[sites]: one list of sites and zones, with the older spellings folded in."""

from __future__ import annotations

import pytest

from ferrite import ConfigError, load_config, sites_of


def test_sites_table_lists_sites_and_zones() -> None:
    config = load_config(data={"sites": {"Example.com": {"timezone": "Europe/Berlin"},
                                         "www.blog.example": {}},
                               "stats": {"timezone": "America/New_York"}})
    sites = sites_of(config)
    assert sites.names() == ["example.com", "blog.example"]
    assert sites.zone_name("example.com") == "Europe/Berlin"
    assert sites.zone_name("blog.example") == "America/New_York"
    assert sites.accepts("example.com") and not sites.accepts("other.example")


def test_no_list_accepts_any_site() -> None:
    sites = sites_of(load_config(data={}))
    assert sites.accepts("anything.example") and sites.names() == []
    assert sites.zone_name("anything.example") == "UTC"


def test_older_spellings_still_work() -> None:
    sites = sites_of(load_config(data={"edge": {"sites": ["a.example"]},
                                       "stats": {"timezones": {"a.example": "Asia/Kolkata"}}}))
    assert sites.names() == ["a.example"] and sites.zone_name("a.example") == "Asia/Kolkata"
    zoned = sites_of(load_config(data={"stats": {"timezones": {"b.example": "Asia/Tokyo"}}}))
    assert zoned.accepts("c.example") and zoned.zone_name("b.example") == "Asia/Tokyo"


def test_both_spellings_are_an_error() -> None:
    config = load_config(data={"sites": {"a.example": {}}, "edge": {"sites": ["b.example"]}})
    with pytest.raises(ConfigError, match=r"keep only \[sites\]"):
        sites_of(config)


@pytest.mark.parametrize(("data", "message"), [
    ({"sites": {"a.example": {"timezone": "Europe/Berln"}}}, "did you mean Europe/Berlin"),
    ({"sites": {"a.example": {"zone": "UTC"}}}, "zone"),
    ({"sites": {"https://a.example/": {}}}, "is not a site domain"),
    ({"sites": {"a.example": "UTC"}}, "a.example"),
])
def test_bad_sites_are_named(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(data=data)


def test_check_reports_both_spellings(tmp_path):
    import subprocess
    import sys

    (tmp_path / "ferrite.toml").write_text('[sites."a.example"]\n[edge]\nsites = ["b.example"]\n')
    out = subprocess.run([sys.executable, "-m", "ferrite", "check"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "keep only [sites]" in out.stderr
