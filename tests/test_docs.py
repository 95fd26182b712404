"""Documentation kept honest: every hook and every config key is documented and tested."""

from __future__ import annotations

import ast
import re

import pytest

from ferrite.core import hookspecs
from ferrite.core.config import PipelineTable
from ferrite.core.manager import BUILTINS, Plugins, find_plugin
from ferrite.core.sites import SiteEntry
from ferrite.dashboard.settings import DashboardTable
from ferrite.edge.settings import EdgeTable
from ferrite.ingest.settings import IngestTable
from ferrite.stats.settings import StatsTable

from .conftest import ROOT

PLUGINS_DOC = (ROOT / "docs" / "plugins.md").read_text()
CONFIG_DOC = (ROOT / "docs" / "configuration.md").read_text()
HOOKS = Plugins.hook_names()


def test_every_hookspec_is_in_the_list_the_docs_tests_walk():
    """HOOKS is read from the hookspecs module: a new hook is covered without editing
    this file, and a name that is not a spec cannot sneak in."""
    specs = {name for name, fn in vars(hookspecs).items()
             if callable(fn) and hasattr(fn, "ferrite_spec")}
    assert HOOKS and set(HOOKS) == specs


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented(hook):
    assert f"### `{hook}`" in PLUGINS_DOC, f"docs/plugins.md lacks a section for {hook}"
    section = PLUGINS_DOC.split(f"### `{hook}`", 1)[1].split("\n### ", 1)[0]
    assert "**When:**" in section, f"docs/plugins.md does not say when {hook} runs"


def all_test_function_names() -> set[str]:
    names = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        tree = ast.parse(path.read_text())
        names |= {n.name for n in ast.walk(tree)
                  if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    return names


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    assert f"test_hook_{hook}" in all_test_function_names(), (
        f"write a test named test_hook_{hook} (see tests/test_hooks.py)")


def section(table: str) -> str:
    start = CONFIG_DOC.index(f"`[{table}]`")
    rest = CONFIG_DOC[start + 1:]
    end = re.search(r"\n#+ `\[", rest)
    return rest[: end.start()] if end else rest


@pytest.mark.parametrize(("table", "model"), [("pipeline", PipelineTable), ("edge", EdgeTable),
                                              ("ingest", IngestTable),
                                              ("stats", StatsTable),
                                              ("dashboard", DashboardTable),
                                              ("sites", SiteEntry)])
def test_top_level_keys_are_documented(table, model):
    text = section(table)
    documented = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE))
    assert documented == set(model.model_fields), f"docs/configuration.md [{table}]"


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_setting_is_documented(name):
    module, _ = find_plugin(name)
    model = module.ferrite_settings()
    text = section(f"plugins.{name}")
    for key in model.model_fields:
        assert f"| `{key}` |" in text, f"docs/configuration.md: [plugins.{name}] lacks {key}"
    documented = set(re.findall(r"^\| `(\w+)` \|", text, re.MULTILINE))
    assert documented == set(model.model_fields), f"[plugins.{name}] documents stale keys"
