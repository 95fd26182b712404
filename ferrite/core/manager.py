"""Finding, configuring and registering the plugins a config lists.

A fresh pluggy manager per `Plugins` (no global state), so tests and embedding
applications can build several chains side by side.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
from pydantic import BaseModel

from ferrite.core import hookspecs
from ferrite.core.config import Config, validate_table
from ferrite.core.errors import FerriteError, PluginError

ENTRY_POINT_GROUP = "ferrite"

#: Short name -> module for the built-in plugins; each is itself an ordinary plugin.
BUILTINS: dict[str, str] = {
    name: f"ferrite.plugins.{name}"
    for name in ("client_ip", "useragent", "bots", "session", "referrer", "ratelimit",
                 "sqlite", "postgres", "jsonl", "console")
}

#: The one table of the chain: its hooks in the order the pipeline runs them, and how
#: each is called. "first": the first answer that is not None wins (through pluggy when a
#: plugin wraps it). "each": every implementation, one at a time, in order (enrichers).
#: "sink": every implementation on its own, with its own retries, buffer and timeout.
CHAIN: tuple[tuple[str, str], ...] = (
    ("ferrite_client_ip", "first"),
    ("ferrite_user_agent", "first"),
    ("ferrite_bot_reason", "first"),
    ("ferrite_session", "first"),
    ("ferrite_enrich", "each"),
    ("ferrite_write", "sink"),
    ("ferrite_write_bots", "sink"),
)
STAGES: tuple[str, ...] = tuple(name for name, _ in CHAIN)
FIRST_ANSWER: tuple[str, ...] = tuple(name for name, how in CHAIN if how == "first")
#: Hooks called one implementation at a time: a pluggy hook wrapper around them would
#: never run as written, so such a wrapper is refused when the plugin loads.
CALLED_ONE_BY_ONE = frozenset(name for name, how in CHAIN if how != "first")


@dataclass(frozen=True)
class Source:
    """Where a plugin came from, for `ferrite plugins` and error messages."""

    kind: str  # "built-in", "entry point" or "module"
    module: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.kind == "entry point":
            return f"entry point from {self.distribution} {self.version} ({self.module})"
        return f"{self.kind} ({self.module})"


@dataclass
class LoadedPlugin:
    name: str
    source: Source
    obj: object  # what is registered with pluggy: the module or its ferrite_plugin object
    settings: BaseModel | None
    hooks: list[str] = field(default_factory=list)

    @property
    def stage(self) -> int:
        indexes = [STAGES.index(h) for h in self.hooks if h in STAGES]
        return min(indexes, default=len(STAGES))


def _one_line(exc: Exception) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def find_plugin(name: str, beside: Path | None = None) -> tuple[ModuleType, Source]:
    """Resolve a name from [pipeline] plugins: built-in, then entry point, then module path
    (importable, or a module in `beside`, the config file's folder)."""
    if name in BUILTINS:
        return importlib.import_module(BUILTINS[name]), Source("built-in", BUILTINS[name])
    for ep in md.entry_points(group=ENTRY_POINT_GROUP, name=name):
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginError(f"plugin '{name}': entry point {ep.value} failed to load: "
                              f"{exc!r}") from exc
        dist = ep.dist
        return module, Source("entry point", ep.value,
                              dist.name if dist else None, dist.version if dist else None)
    module_name, _, attr = name.partition(":")
    if all(part.isidentifier() for part in module_name.split(".")):
        top = module_name.split(".")[0]
        if beside is not None and (
                (beside / f"{top}.py").is_file() or (beside / top / "__init__.py").is_file()
        ) and str(beside) not in sys.path:
            # a plugin module written next to ferrite.toml: found without PYTHONPATH
            sys.path.append(str(beside))
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if not (exc.name and module_name.startswith(exc.name)):
                raise PluginError(f"plugin '{name}' failed to import: {exc!r}") from exc
        except Exception as exc:
            raise PluginError(f"plugin '{name}' failed to import: {exc!r}") from exc
        else:
            if not attr:
                return module, Source("module", name)
            try:
                return getattr(module, attr), Source("module", name)
            except AttributeError:
                raise PluginError(f"plugin '{name}': module {module_name} has no "
                                  f"attribute {attr!r}") from None
    installed = sorted(ep.name for ep in md.entry_points(group=ENTRY_POINT_GROUP))
    raise PluginError(
        f"unknown plugin '{name}': not a built-in plugin ({', '.join(BUILTINS)}), not an "
        f"installed entry point ({', '.join(installed) or 'none installed'}), and no module "
        f"of that name can be imported (from the Python path or the config file's folder); "
        f"fix the name, install the plugin, or put {module_name.split('.')[0]}.py next to "
        f"ferrite.toml"
    )


class Plugins:
    """The configured plugins, registered with one pluggy manager.

    Plugins are registered in reverse list order because pluggy calls implementations
    last-registered-first: within one stage they then run in the order the config lists.
    """

    def __init__(self, config: Config, extra: list[tuple[str, object]] | None = None) -> None:
        self.config = config
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.loaded: dict[str, LoadedPlugin] = {}
        wanted = [(n, None) for n in config.plugins] + [(n, o) for n, o in (extra or [])]
        errors: dict[str, str] = {}
        for name, obj in reversed(wanted):
            try:
                self._load(name, obj)
            except FerriteError as exc:  # report every broken plugin at once
                errors[name] = str(exc)
        if errors:
            order = [n for n, _ in wanted]
            raise PluginError("\n".join(errors[n] for n in order if n in errors))
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            name = self.pm.get_name(exc.plugin)
            raise PluginError(f"plugin '{name}': {_one_line(exc)}; hook names must be "
                              f"one of: {', '.join(self.hook_names())}") from None

    @property
    def hook(self) -> Any:
        return self.pm.hook

    @staticmethod
    def hook_names() -> list[str]:
        return [n for n in dir(hookspecs) if n.startswith("ferrite_")]

    def _load(self, name: str, obj: object | None) -> None:
        if obj is None:
            try:
                module, source = find_plugin(name, self.config.folder)
            except PluginError as exc:
                raise PluginError(f"{exc} (in [pipeline] plugins in {self.config.source})"
                                  ) from exc.__cause__
        else:
            label = obj.__name__ if isinstance(obj, ModuleType) else type(obj).__qualname__
            module, source = obj, Source("module", label)
        self._register(name, module)
        settings = self._settings(name, module)
        factory = self._own_impl(module, "ferrite_plugin")
        if factory is not None:
            try:
                instance = factory.function(settings=settings, config=self.config)
            except Exception as exc:
                raise PluginError(f"plugin '{name}': ferrite_plugin failed: {exc}") from exc
            if instance is not None:
                self.pm.unregister(module)
                self._register(name, instance)
                module = instance
        hooks = [impl_name for impl_name in self.hook_names()
                 if any(i.plugin is module for i in getattr(self.pm.hook, impl_name)
                        .get_hookimpls())]
        self.loaded[name] = LoadedPlugin(name, source, module, settings, hooks)

    def _register(self, name: str, obj: object) -> None:
        try:
            self.pm.register(obj, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"plugin '{name}': {_one_line(exc)}") from None
        except ValueError as exc:
            raise PluginError(f"plugin '{name}' cannot be registered: {exc}") from None
        for hook_name in sorted(CALLED_ONE_BY_ONE):
            impl = self._own_impl(obj, hook_name)
            if impl is not None and (impl.hookwrapper or getattr(impl, "wrapper", False)):
                self.pm.unregister(obj)
                raise PluginError(
                    f"plugin '{name}': {hook_name} cannot be a hook wrapper (wrapper=True or "
                    f"hookwrapper=True): Ferrite calls each {hook_name} on its own, so a "
                    f"wrapper would never wrap anything; implement it as a plain hook")

    def _own_impl(self, obj: object, hook_name: str) -> Any:
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        return next((i for i in impls if i.plugin is obj), None)

    def _settings(self, name: str, module: object) -> BaseModel | None:
        where = self.config.where(f"plugins.{name}")
        table = self.config.plugin_table(name)
        declared = self._own_impl(module, "ferrite_settings")
        model = declared.function() if declared is not None else None
        if model is None:
            if table:
                raise PluginError(f"{where}: plugin '{name}' takes no settings, but the "
                                  f"table sets {', '.join(sorted(table))}; remove them")
            return None
        return validate_table(model, table, where)

    def in_stage_order(self) -> list[LoadedPlugin]:
        order = list(self.config.plugins)
        plugins = list(self.loaded.values())
        return sorted(plugins, key=lambda p: (p.stage, order.index(p.name)
                                              if p.name in order else len(order)))

    def sinks(self) -> list[tuple[str, Any]]:
        """(name, write function) for each sink, in config order, to call one at a time."""
        return self._impls("ferrite_write")

    def bot_sinks(self) -> list[tuple[str, Any]]:
        return self._impls("ferrite_write_bots")

    def _impls(self, hook_name: str) -> list[tuple[str, Any]]:
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        return [(i.plugin_name, i.function) for i in reversed(impls)]
