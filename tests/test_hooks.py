"""One test per hook (tests/test_docs.py checks that each hookspec has one), written from a
plugin author's side: implement the hook, run the chain, see the effect."""

from __future__ import annotations

import types

import pytest
from pydantic import Field

import ferrite
from ferrite import Table, hookimpl
from ferrite.core.config import load_config
from ferrite.core.event import Agent
from ferrite.testing import GOOGLEBOT, TEST_CONFIG, make_hit, run_chain


def module(name: str, **hooks) -> types.ModuleType:
    """A plugin module built from hook functions, as a user's file would be."""
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, hookimpl(fn))
    return mod


def test_hook_ferrite_settings():
    class Settings(Table):
        greeting: str = Field("hi")

    seen = {}

    def ferrite_settings():
        return Settings

    def ferrite_plugin(settings, config):
        seen["settings"] = settings
        return None  # no object: the module's own hooks take part

    plugin = module("greeter", ferrite_settings=ferrite_settings, ferrite_plugin=ferrite_plugin)
    config = {"pipeline": {"plugins": []}}
    run_chain([], config, plugins=[("greeter", plugin)])
    assert seen["settings"].greeting == "hi"


def test_hook_ferrite_settings_validates_the_plugins_own_table(tmp_path, monkeypatch):
    (tmp_path / "my_sink.py").write_text(
        "import ferrite\n"
        "class Settings(ferrite.Table):\n    url: str\n"
        "@ferrite.hookimpl\ndef ferrite_settings():\n    return Settings\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = load_config(data={"pipeline": {"plugins": ["my_sink"]},
                               "plugins": {"my_sink": {"ulr": "x"}}})
    with pytest.raises(ferrite.PluginError, match=r"unknown key 'ulr' in \[plugins.my_sink\].*"
                                                  "valid keys: url"):
        ferrite.Pipeline(config)


def test_hook_ferrite_plugin(tmp_path, monkeypatch):
    (tmp_path / "counter_plugin.py").write_text(
        "import ferrite\n"
        "class Settings(ferrite.Table):\n    step: int = 1\n"
        "class Counter:\n"
        "    def __init__(self, step):\n        self.step, self.seen = step, 0\n"
        "    @ferrite.hookimpl\n"
        "    def ferrite_enrich(self, event):\n"
        "        self.seen += self.step\n        event.extra['seen'] = self.seen\n"
        "@ferrite.hookimpl\ndef ferrite_settings():\n    return Settings\n"
        "@ferrite.hookimpl\ndef ferrite_plugin(settings, config):\n"
        "    return Counter(settings.step)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config = {"pipeline": {"plugins": ["counter_plugin"]},
              "plugins": {"counter_plugin": {"step": 5}}}
    first = run_chain([make_hit(), make_hit()], config)
    second = run_chain([make_hit()], config)
    # One object per chain, built with this plugin's settings: no state leaks between chains.
    assert [e.extra["seen"] for e in first.events] == [5, 10]
    assert [e.extra["seen"] for e in second.events] == [5]


def test_hook_ferrite_startup_and_ferrite_shutdown_order():
    calls = []
    plugin = module("life", ferrite_startup=lambda: calls.append("start"),
                    ferrite_shutdown=lambda: calls.append("stop"),
                    ferrite_write=lambda events: calls.append(len(events)))
    run_chain([make_hit()], plugins=[("life", plugin)])
    assert calls == ["start", 1, "stop"]


def test_hook_ferrite_startup():
    """Runs before the first hit, once; its failure propagates and nothing is processed."""
    calls = []
    plugin = module("opener", ferrite_startup=lambda: calls.append("start"))
    run_chain([make_hit(), make_hit()], plugins=[("opener", plugin)])
    assert calls == ["start"]

    def broken():
        raise OSError("no database")

    written: list = []
    with pytest.raises(OSError, match="no database"):
        run_chain([make_hit()], plugins=[("broken", module(
            "broken", ferrite_startup=broken,
            ferrite_write=lambda events: written.extend(events)))])
    assert written == []


def test_hook_ferrite_shutdown_runs_for_every_plugin_even_if_one_fails():
    calls = []

    def broken():
        raise OSError("disk gone")

    first = module("first", ferrite_shutdown=broken)
    second = module("second", ferrite_shutdown=lambda: calls.append("second closed"))
    with pytest.raises(ferrite.SinkError, match="first: OSError"):
        run_chain([], plugins=[("first", first), ("second", second)])
    assert calls == ["second closed"]


def test_hook_ferrite_shutdown():
    """Runs once, after the last batch was written."""
    calls = []
    plugin = module("closer", ferrite_write=lambda events: calls.append(len(events)),
                    ferrite_shutdown=lambda: calls.append("closed"))
    run_chain([make_hit(), make_hit()], plugins=[("closer", plugin)])
    assert calls == [2, "closed"]


def test_hook_ferrite_client_ip():
    seen = []
    override = module("override", ferrite_client_ip=lambda peer, headers: "198.51.100.1")
    spy = module("spy", ferrite_session=lambda hit, client_ip: seen.append(client_ip) or "s")
    config = {"pipeline": {"plugins": []}}
    run_chain([make_hit(ip="203.0.113.7")], config,
              plugins=[("override", override), ("spy", spy)])
    assert seen == ["198.51.100.1"]
    # Without any client_ip plugin the socket peer is used.
    seen.clear()
    run_chain([make_hit(ip="203.0.113.7")], config, plugins=[("spy", spy)])
    assert seen == ["203.0.113.7"]


def test_hook_ferrite_user_agent():
    custom = module("ua", ferrite_user_agent=lambda user_agent: Agent("Lynx", "Plan 9", "desktop"))
    result = run_chain([make_hit()], {"pipeline": {"plugins": []}}, plugins=[("ua", custom)])
    event = result.events[0]
    assert (event.browser, event.os, event.device) == ("Lynx", "Plan 9", "desktop")


def test_hook_ferrite_bot_reason():
    blocker = module("blocker", ferrite_bot_reason=lambda hit: "staff" if
                     hit.headers.get("x-staff") else None)
    result = run_chain([make_hit(headers={"x-staff": "1"}), make_hit(), make_hit(
        user_agent=GOOGLEBOT)], plugins=[("blocker", blocker)])
    assert len(result.events) == 1
    # Configured plugins answer first; the user plugin only sees what bots let through.
    assert sorted(e.bot for e in result.bots) == ["spider", "staff"]
    assert result.metrics.get("discarded", reason="bot:staff") == 1


def test_hook_ferrite_session():
    custom = module("sess", ferrite_session=lambda hit, client_ip: f"{hit.site}|fixed")
    result = run_chain([make_hit()], {"pipeline": {"plugins": []}}, plugins=[("sess", custom)])
    assert result.events[0].session == "example.com|fixed"


def test_hook_ferrite_enrich():
    def country(event, headers):
        event.extra["country"] = headers.get("cf-ipcountry", "")
        if "user-agent" in headers or "x-forwarded-for" in headers:
            raise AssertionError("enrichers must not see identifying headers")

    def drop_admin(event):
        return "admin_page" if event.path.startswith("/admin") else None

    plugins = [("country", module("country", ferrite_enrich=country)),
               ("drop", module("drop", ferrite_enrich=drop_admin))]
    hits = [make_hit("https://example.com/x", headers={"cf-ipcountry": "DE",
                                                        "x-forwarded-for": "1.2.3.4"}),
            make_hit("https://example.com/admin/users")]
    result = run_chain(hits, plugins=plugins)
    assert [e.extra["country"] for e in result.events] == ["DE"]
    assert result.discarded == {"admin_page": 1}


def test_hook_ferrite_enrich_failure_keeps_the_event_and_counts_it():
    def broken(event):
        raise KeyError("oops")

    result = run_chain([make_hit()], plugins=[("broken", module("broken", ferrite_enrich=broken))])
    assert len(result.events) == 1
    assert result.metrics.get("errors", component="broken", stage="enrich") == 1


def test_hook_ferrite_write():
    batches = []
    sink = module("sink", ferrite_write=lambda events: batches.append(len(events)))
    config = {**TEST_CONFIG, "pipeline": {**TEST_CONFIG["pipeline"], "batch_size": 2}}
    run_chain([make_hit() for _ in range(5)], config, plugins=[("sink", sink)])
    assert batches == [2, 2, 1]


def test_hook_ferrite_write_failure_does_not_starve_other_sinks():
    def broken(events):
        raise OSError("disk full")

    stored: list = []
    healthy = module("healthy", ferrite_write=lambda events: stored.extend(events))
    with pytest.raises(ferrite.SinkError, match="broken: OSError") as info:
        run_chain([make_hit(), make_hit()], plugins=[
            ("broken", module("broken", ferrite_write=broken)), ("healthy", healthy)])
    assert set(info.value.failures) == {"broken"}
    assert len(stored) == 2  # the other sink still got the whole batch


def test_hook_ferrite_write_bots():
    kept = []
    sink = module("botsink", ferrite_write_bots=lambda events: kept.extend(events),
                  ferrite_write=lambda events: None)
    result = run_chain([make_hit(user_agent=GOOGLEBOT), make_hit()], plugins=[("botsink", sink)])
    assert [e.bot for e in kept] == ["spider"]
    assert kept[0].session == ""  # bots never get a session
    assert len(result.events) == 1


def test_wrong_argument_name_is_reported_with_plugin_and_hook():
    bad = module("bad", ferrite_enrich=lambda evnt: None)
    with pytest.raises(ferrite.PluginError, match="plugin 'bad'.*ferrite_enrich.*evnt"):
        run_chain([], plugins=[("bad", bad)])


def test_misspelled_hook_is_reported():
    bad = module("bad", ferrite_enrichh=lambda event: None)
    with pytest.raises(ferrite.PluginError, match="plugin 'bad'.*unknown hook 'ferrite_enrichh'"
                                                  ".*must be one of"):
        run_chain([], plugins=[("bad", bad)])


def test_order_within_a_stage_follows_the_config_list(tmp_path, monkeypatch):
    for name in ("first_ip", "second_ip"):
        (tmp_path / f"{name}.py").write_text(
            "import ferrite\n@ferrite.hookimpl\n"
            f"def ferrite_client_ip(peer):\n    return '{name}'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    seen = []
    spy = module("spy", ferrite_session=lambda client_ip: seen.append(client_ip) or "s")
    for order in (["first_ip", "second_ip"], ["second_ip", "first_ip"]):
        run_chain([make_hit()], {"pipeline": {"plugins": order}}, plugins=[("spy", spy)])
    assert seen == ["first_ip", "second_ip"]


@pytest.mark.parametrize("hook_name", ["ferrite_enrich", "ferrite_write", "ferrite_write_bots"])
@pytest.mark.parametrize("flag", ["wrapper", "hookwrapper"])
def test_a_wrapper_on_a_hook_called_one_by_one_is_refused(hook_name, flag):
    plugin = types.SimpleNamespace(**{hook_name: ferrite.hookimpl(**{flag: True})(
        _generator(hook_name))})
    with pytest.raises(ferrite.PluginError, match=rf"plugin 'wrapping': {hook_name} cannot be "
                                                  r"a hook wrapper"):
        run_chain([make_hit()], plugins=[("wrapping", plugin)])


def _generator(hook_name):
    """A generator function with the hook's own argument names, as pluggy checks them."""
    if hook_name == "ferrite_enrich":
        def hook(event):
            yield
    else:
        def hook(events):
            yield
    return hook


def test_hook_ferrite_write_may_say_how_many_events_were_new():
    seen: set[str] = set()

    def write(events):
        before = len(seen)
        seen.update(e.id for e in events)
        return len(seen) - before

    hits = [make_hit(id="0" * 32), make_hit(id="1" * 32)]
    result = run_chain([*hits, *hits], plugins=[("dedup", module("dedup", ferrite_write=write))])
    assert result.metrics.get("new", component="dedup") == 2


async def test_hook_ferrite_health(tmp_path):
    """/readyz asks every plugin; a problem makes it 503 and listed, None is ready."""
    from ferrite.core.pipeline import Pipeline
    from ferrite.edge.app import create_app

    from .edge_helpers import edge_config

    state = {"problem": "the widget server at widgets.internal cannot be reached"}
    plugin = module("widgets", ferrite_health=lambda: state["problem"])
    config = load_config(data=edge_config(tmp_path / "f.db"))
    app = create_app(config, pipeline=Pipeline(config, extra_plugins=[("widgets", plugin)]))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert state["problem"] in (await ready.get_json())["problems"]
        state["problem"] = None
        assert (await client.get("/readyz")).status_code == 200
