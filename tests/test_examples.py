"""The examples a newcomer copies from must work."""

from __future__ import annotations

import sqlite3

import pytest

from ferrite import Pipeline, load_config
from ferrite.core.manager import Plugins
from ferrite.testing import make_hit, run_chain

from .conftest import ROOT


def test_example_config_is_valid_and_uses_every_builtin():
    from ferrite.core.manager import BUILTINS

    config = load_config(ROOT / "examples" / "ferrite.toml")
    Plugins(config)
    # postgres needs a server: it has an example of its own, run in test_postgres.py
    assert set(config.plugins) == set(BUILTINS) - {"postgres"}
    postgres = load_config(ROOT / "examples" / "ferrite-postgres.toml",
                           environ={"DATABASE_URL": "postgresql://f:secret@db.example/f"})
    assert Plugins(postgres).loaded["postgres"].settings.url.endswith("@db.example/f")


def test_deploy_examples_are_valid():
    """examples/deploy: the configs docs/deploy.md tells operators to copy."""
    from ferrite.core.sites import sites_of

    single = load_config(ROOT / "examples" / "deploy" / "ferrite-sqlite.toml")
    Plugins(single)
    assert single.edge.trusted_proxies and sites_of(single).accepts("example.com")
    node = load_config(ROOT / "examples" / "deploy" / "ferrite-node.toml",
                       environ={"DATABASE_URL": "postgresql://f:secret@db.example/f"})
    assert "postgres" in Plugins(node).loaded
    unit = (ROOT / "examples" / "deploy" / "ferrite.service").read_text()
    assert "ExecStart=/opt/ferrite/bin/ferrite serve --config /etc/ferrite/ferrite.toml" in unit
    for proxy in ("nginx.conf", "Caddyfile"):
        assert "8000" in (ROOT / "examples" / "deploy" / proxy).read_text()


def test_example_config_runs(in_tmp, capsys):
    with Pipeline(load_config(ROOT / "examples" / "ferrite.toml")) as pipeline:
        pipeline.run([make_hit()])
    assert (in_tmp / "ferrite.db").exists() and (in_tmp / "ferrite-events.jsonl").exists()
    assert "pageview" in capsys.readouterr().out


@pytest.fixture
def country_module(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "examples" / "enricher"))


def test_country_enricher_by_module_path(country_module, tmp_path):
    db = tmp_path / "e.db"
    config = {"pipeline": {"plugins": ["client_ip", "useragent", "bots", "session", "referrer",
                                       "country", "sqlite"]},
              "plugins": {"sqlite": {"path": str(db)}}}
    run_chain([make_hit(headers={"cf-ipcountry": "de"}),
               make_hit(headers={"cloudfront-viewer-country": "FR"}),
               make_hit(headers={"cf-ipcountry": "XX"})], config)
    countries = [r[0] for r in sqlite3.connect(db).execute("SELECT country FROM events")]
    assert sorted(countries) == ["", "DE", "FR"]


def test_country_enricher_settings(country_module):
    config = {"pipeline": {"plugins": ["country"]},
              "plugins": {"country": {"headers": ["x-my-country"]}}}
    result = run_chain([make_hit(headers={"x-my-country": "nl", "cf-ipcountry": "DE"})], config)
    assert result.events[0].extra == {"country": "NL"}
