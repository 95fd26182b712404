"""Config loading: every mistake is an error that names the key, the file and the fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ferrite import ConfigError, Pipeline, PluginError, load_config
from ferrite.core.config import DEFAULT_PLUGINS
from ferrite.core.manager import Plugins

GOOD = """
[pipeline]
plugins = ["client_ip", "useragent", "bots", "session", "referrer", "sqlite"]
[plugins.sqlite]
path = "x.db"
"""


def write(tmp_path, text, name="ferrite.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_embedded_default_without_a_file(in_tmp):
    config = load_config()
    assert config.source == "<embedded default>"
    assert config.plugins == ["client_ip", "useragent", "bots", "session", "referrer", "sqlite"]
    assert config.plugin_table("sqlite") == {"path": "ferrite.db"}


def test_embedded_default_stores_into_ferrite_db(in_tmp):
    from ferrite.testing import make_hit

    with Pipeline() as pipeline:
        pipeline.run([make_hit()])
    assert (in_tmp / "ferrite.db").is_file()


def test_ferrite_toml_in_working_directory_is_used(in_tmp):
    write(in_tmp, GOOD)
    config = load_config()
    assert config.source == "ferrite.toml"
    assert config.plugin_table("sqlite") == {"path": "x.db"}


def test_explicit_path(tmp_path):
    path = write(tmp_path, GOOD, "other.toml")
    assert load_config(path).source == str(path)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(ConfigError, match="not found.*embedded default"):
        load_config(tmp_path / "nope.toml")


def test_invalid_toml_names_the_file_and_line(tmp_path):
    path = write(tmp_path, "[pipeline\nplugins = 1\n")
    with pytest.raises(ConfigError, match=r"ferrite.toml is not valid TOML.*line 1"):
        load_config(path)


def test_unknown_top_level_table_lists_valid_ones(tmp_path):
    path = write(tmp_path, GOOD + "\n[pipline]\nx = 1\n")
    with pytest.raises(ConfigError, match="unknown table or key 'pipline'.*valid top-level "
                                          "tables: dashboard, edge, ingest, pipeline, "
                                          "plugins, sites, stats"):
        load_config(path)


@pytest.mark.parametrize("text", [
    '[plugins.sqlite]\npath = "stats.db"\n',
    '[edge]\nsites = ["example.com"]\n',
    "[pipeline]\nbatch_size = 50\n",
    "",
])
def test_a_small_file_without_a_plugin_list_runs_the_default_chain(tmp_path, text):
    config = load_config(write(tmp_path, text))
    assert config.plugins == list(DEFAULT_PLUGINS)
    assert config.default_chain


def test_an_explicit_plugin_list_replaces_the_default_chain(tmp_path):
    config = load_config(write(tmp_path, '[pipeline]\nplugins = ["useragent", "console"]\n'))
    assert config.plugins == ["useragent", "console"]
    assert not config.default_chain


def test_the_embedded_default_is_the_default_chain():
    assert load_config(None).plugins == list(DEFAULT_PLUGINS)


def test_check_and_the_banner_show_the_effective_chain(tmp_path):
    write(tmp_path, '[plugins.sqlite]\npath = "stats.db"\n')
    out = subprocess.run([sys.executable, "-m", "ferrite", "check"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "client_ip, useragent, bots, session, referrer, sqlite" in out.stdout
    assert "the default chain" in out.stdout


def test_unknown_pipeline_key_lists_valid_ones(tmp_path):
    path = write(tmp_path, GOOD.replace("[pipeline]", "[pipeline]\nbatchsize = 3"))
    with pytest.raises(ConfigError, match=r"unknown key 'batchsize' in \[pipeline\] in "
                                          r".*ferrite.toml; valid keys: plugins, batch_size"):
        load_config(path)


def test_wrong_type_names_key_and_value(tmp_path):
    path = write(tmp_path, GOOD.replace("[pipeline]", "[pipeline]\nbatch_size = 'many'"))
    with pytest.raises(ConfigError, match=r"key 'batch_size' in \[pipeline\].*must be a number, "
                                          r"not the string 'many'"):
        load_config(path)


def test_out_of_range_value(tmp_path):
    path = write(tmp_path, GOOD.replace("[pipeline]", "[pipeline]\nbatch_size = 0"))
    with pytest.raises(ConfigError, match="batch_size.*greater than or equal to 1"):
        load_config(path)


def test_plugin_listed_twice(tmp_path):
    path = write(tmp_path, '[pipeline]\nplugins = ["bots", "bots"]\n')
    with pytest.raises(ConfigError, match="lists bots more than once"):
        load_config(path)


def test_table_for_unlisted_plugin(tmp_path):
    path = write(tmp_path, '[pipeline]\nplugins = ["bots"]\n[plugins.sqlite]\npath = "a"\n')
    with pytest.raises(ConfigError, match=r"\[plugins.sqlite\].*does not list; listed plugins: "
                                          "bots"):
        load_config(path)


def test_unknown_plugin_lists_choices(tmp_path):
    config = load_config(write(tmp_path, '[pipeline]\nplugins = ["sqlight"]\n'))
    with pytest.raises(PluginError, match=r"unknown plugin 'sqlight': not a built-in plugin "
                                          r"\(client_ip, .*sqlite.*\), not an installed entry "
                                          r"point \(csv\)"):
        Plugins(config)


def test_dotted_path_that_does_not_import(tmp_path):
    config = load_config(write(tmp_path, '[pipeline]\nplugins = ["no_such.module"]\n'))
    with pytest.raises(PluginError, match="unknown plugin 'no_such.module'.*no module"):
        Plugins(config)


def test_unknown_plugin_key_names_plugin_file_and_valid_keys(tmp_path):
    path = write(tmp_path, GOOD.replace('path = "x.db"', 'pth = "x.db"'))
    with pytest.raises(PluginError) as info:
        Plugins(load_config(path))
    message = str(info.value)
    assert "unknown key 'pth' in [plugins.sqlite] in" in message
    assert str(path) in message
    assert "valid keys: path, table, keep_bots" in message


def test_every_broken_plugin_is_reported_at_once(tmp_path):
    text = GOOD + '[plugins.client_ip]\ntrusted_proxies = ["10.0.0.0/33"]\n'
    text = text.replace('path = "x.db"', 'path = "x.db"\nkeep_bots = "maybe"')
    with pytest.raises(PluginError) as info:
        Plugins(load_config(write(tmp_path, text)))
    lines = str(info.value).splitlines()
    assert "trusted_proxies.0" in lines[0] and "not a valid IPv4 or IPv6 network" in lines[0]
    assert "keep_bots" in lines[1] and "must be true or false" in lines[1]


def test_plugin_without_settings_rejects_a_table(tmp_path):
    import types

    from ferrite.core.config import Config, PipelineTable

    bare = types.ModuleType("bare")  # a plugin module with no ferrite_settings hook
    config = Config("test.toml", PipelineTable(plugins=[]), {"bare": {"x": 1}})
    with pytest.raises(PluginError, match="takes no settings, but the table sets x"):
        Plugins(config, [("bare", bare)])


def test_env_table_and_env_string(tmp_path):
    text = ('[pipeline]\nplugins = ["sqlite"]\n[plugins.sqlite]\n'
            'path = "${DATA_DIR}/events.db"\ntable = { "$env" = "TABLE" }\n')
    config = load_config(write(tmp_path, text), environ={"DATA_DIR": "/srv", "TABLE": "hits"})
    assert config.plugin_table("sqlite") == {"path": "/srv/events.db", "table": "hits"}


def test_missing_env_var_names_key_and_variable(tmp_path):
    text = '[pipeline]\nplugins = ["sqlite"]\n[plugins.sqlite]\npath = "${NOPE_DIR}/e.db"\n'
    with pytest.raises(ConfigError, match="key 'plugins.sqlite.path'.*NOPE_DIR, which is not set"):
        load_config(write(tmp_path, text), environ={})


def test_a_quoted_number_is_a_wrong_type(tmp_path):
    path = write(tmp_path, GOOD.replace("[pipeline]", '[pipeline]\nbatch_size = "500"'))
    with pytest.raises(ConfigError, match=r"batch_size must be a number, not the string '500'; "
                                          r"write it without quotes"):
        load_config(path)


def test_an_environment_value_can_be_a_number(tmp_path):
    path = write(tmp_path, GOOD.replace("[pipeline]",
                                        '[pipeline]\nbatch_size = { "$env" = "BATCH" }'))
    assert load_config(path, environ={"BATCH": "250"}).pipeline.batch_size == 250


def test_every_bad_key_of_every_table_is_reported_at_once(tmp_path):
    path = write(tmp_path, '[pipeline]\nbatchsize = 3\nbatch_size = "x"\n'
                           '[edge]\nbind = "localhost"\nworkerz = 2\n'
                           '[ingest]\npoll_seconds = -1\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    for part in ("'batchsize' in [pipeline]", "batch_size must be a number",
                 "bind must be HOST:PORT", "'workerz' in [edge]", "'poll_seconds' in [ingest]"):
        assert part in text, part
