"""Loading and validating ferrite.toml.

Every table is checked against a pydantic model that forbids unknown keys, and every error
names the table, the key, the file and what would be valid, because an operator reading
`ferrite check` output should not need to open the source to fix their config.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ferrite.core.errors import ConfigError

DEFAULT_FILE = "ferrite.toml"
EMBEDDED = "<embedded default>"
#: The chain a config without [pipeline] plugins runs (the embedded default's too).
#: The SQLite file of the default chain, and of the daily salts unless configured apart.
DEFAULT_DATABASE = "ferrite.db"
DEFAULT_PLUGINS = ("client_ip", "useragent", "bots", "session", "referrer", "sqlite")
BIND = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T", bound="Table")


class Table(BaseModel):
    """Base for every config table: unknown keys are errors, not silently ignored, and a
    quoted number or boolean is a wrong type (pydantic's lax mode would take "500")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_quoted_scalars(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str) or info.field_name is None:
            return value
        wanted = _scalar_kind(cls.model_fields[info.field_name].annotation)
        if wanted is not None:
            raise ValueError(f"{info.field_name} must be {wanted}, not the string {value!r}; "
                             f"write it without quotes")
        return value


def _scalar_kind(annotation: Any) -> str | None:
    """'a number' or 'true or false' for int, float and bool fields (optional ones too)."""
    kinds = {int: "a number", float: "a number", bool: "true or false"}
    if annotation in kinds:
        return kinds[annotation]
    args = [a for a in get_args(annotation) if a is not type(None)]
    if len(args) == 1 and args[0] in kinds and get_origin(annotation) in (Union, UnionType):
        return kinds[args[0]]
    return None


class PipelineTable(Table):
    plugins: list[str] = Field(
        description="Plugin names: built-in short names, entry points in group 'ferrite', "
        "or dotted module paths."
    )
    batch_size: int = Field(
        500, ge=1, le=100_000, description="Most events handed to the sinks in one batch."
    )
    retry_attempts: int = Field(4, ge=1, le=50,
                                description="Tries per batch and sink before it is spooled.")
    retry_initial_seconds: float = Field(0.1, ge=0, le=60,
                                         description="Wait before the first retry; doubles.")
    retry_max_seconds: float = Field(2.0, ge=0, le=600, description="Cap on any one wait.")
    startup_wait_seconds: float = Field(
        60.0, ge=0, le=86_400, description="How long a starting node waits for a plugin's "
        "server that cannot be reached yet (a database still booting), retrying, before it "
        "gives up.")
    sink_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="For the edge: a sink write that takes longer "
        "counts as failed; the sink is then skipped (its batches spooled) until it answers.")
    sink_buffer_batches: int = Field(8, ge=1, le=10_000, description="For the edge: batches "
                                     "that may wait for one sink before the writer waits.")
    spool_dir: str | None = Field(
        "ferrite-spool", description="Dead-letter spool for batches a sink could not take; "
        "empty disables it (such batches then fail the request).")


#: The tables of the rooms beside core ([edge], [ingest]): each room registers its model
#: from a settings module that imports no web stack, and the package imports those
#: modules (ferrite/__init__.py), so core validates every table without importing a room.
ROOM_TABLES: dict[str, type[Table]] = {}


def register_table(name: str, model: type[T]) -> type[T]:
    """Make `[name]` a known top-level table, validated against `model`."""
    ROOM_TABLES[name] = model
    return model


@dataclass(frozen=True)
class Config:
    """A validated configuration: the pipeline table plus each plugin's raw table.

    Plugin tables are validated later, by the plugin manager, against each plugin's own
    settings model (only it knows the keys).
    """

    source: str
    pipeline: PipelineTable
    plugin_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The rooms' validated tables by name (config.edge is tables["edge"]).
    tables: dict[str, Table] = field(default_factory=dict)
    #: True when the file did not list [pipeline] plugins and the default chain runs.
    default_chain: bool = False

    def __getattr__(self, name: str) -> Any:
        tables = self.__dict__.get("tables") or {}
        if name in tables:
            return tables[name]
        if name in ROOM_TABLES:  # a Config built by hand: the room's defaults
            return ROOM_TABLES[name]()
        raise AttributeError(f"{type(self).__name__!r} has no attribute {name!r}")

    def with_table(self, name: str, table: Table) -> Config:
        """A copy with one room's table replaced (the command line's overrides)."""
        return replace(self, tables={**self.tables, name: table})

    @property
    def plugins(self) -> list[str]:
        return list(self.pipeline.plugins)

    @property
    def folder(self) -> Path | None:
        """The config file's folder, where plugin modules written beside it are found."""
        path = Path(self.source)
        return path.resolve().parent if path.is_file() else None

    def where(self, table: str) -> str:
        return f"[{table}] in {self.source}"

    def plugin_table(self, name: str) -> dict[str, Any]:
        return self.plugin_tables.get(name, {})


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    data: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Load `path`, else ./ferrite.toml if present, else the embedded default.

    `data` (a dict shaped like the TOML file) is for tests and embedding applications.
    """
    env = os.environ if environ is None else environ
    if data is not None:
        return _from_mapping(dict(data), "<mapping>", env)
    if path is None and Path(DEFAULT_FILE).is_file():
        path = DEFAULT_FILE
    if path is None:
        text = resources.files("ferrite.core").joinpath("default.toml").read_text("utf-8")
        return _from_mapping(tomllib.loads(text), EMBEDDED, env)
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {file} not found; pass an existing file to --config, "
                          f"or run without it to use the embedded default") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {file}: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from None
    return _from_mapping(raw, str(file), env)


def _from_mapping(raw: dict[str, Any], source: str, env: Mapping[str, str]) -> Config:
    known = {"pipeline", "plugins", *ROOM_TABLES}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown table or key {', '.join(repr(k) for k in unknown)} in {source}; "
            f"valid top-level tables: {', '.join(sorted(known))}"
        )
    raw = resolve_env(raw, env, source)
    # Without [pipeline] (or without its plugins key) the default chain runs: a file that
    # only sets [plugins.sqlite] path or [edge] sites is a complete configuration.
    pipeline_raw = raw.get("pipeline", {})
    default_chain = isinstance(pipeline_raw, Mapping) and "plugins" not in pipeline_raw
    if default_chain:
        pipeline_raw = {**pipeline_raw, "plugins": list(DEFAULT_PLUGINS)}
    # Every table is checked before anything is reported, so one run lists every problem.
    problems: list[str] = []

    def check(model: type[M], data: Any, where: str) -> M | None:
        try:
            return validate_table(model, data, where)
        except ConfigError as exc:
            problems.append(str(exc))
            return None

    pipeline = check(PipelineTable, pipeline_raw, f"[pipeline] in {source}")
    rooms = {name: check(model, raw.get(name, {}), f"[{name}] in {source}")
             for name, model in ROOM_TABLES.items()}
    tables = raw.get("plugins", {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        problems.append(f"[plugins] in {source} must hold one table per plugin, "
                        f"such as [plugins.sqlite]")
        tables = {}
    if pipeline is not None:
        names = pipeline.plugins
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"[pipeline] plugins in {source} lists {', '.join(duplicates)} "
                            f"more than once; list each plugin once")
        problems.extend(
            f"[plugins.{name}] in {source} configures a plugin that [pipeline] plugins "
            f"does not list; listed plugins: {', '.join(names) or '(none)'}"
            for name in sorted(set(tables) - set(names)))
    if problems or pipeline is None or None in rooms.values():
        raise ConfigError("\n".join(problems))
    return Config(source=source, pipeline=pipeline, plugin_tables=tables,
                  tables={name: table for name, table in rooms.items() if table is not None},
                  default_chain=default_chain)


def validate_table(model: type[M], data: Any, where: str) -> M:
    """Validate one table, turning pydantic's errors into messages an operator can act on."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where} must be a table, got {type(data).__name__}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(model, err, where) for err in exc.errors())) from None


def _describe(model: type[BaseModel], err: Any, where: str) -> str:
    loc = ".".join(str(part) for part in err["loc"])
    valid = ", ".join(model.model_fields) or "(none: this plugin takes no settings)"
    if err["type"] == "extra_forbidden":
        return f"unknown key '{loc}' in {where}; valid keys: {valid}"
    if err["type"] == "missing":
        return f"missing required key '{loc}' in {where}"
    if err["type"] == "value_error":  # our validators' messages say what to do already
        return f"key '{loc}' in {where}: {err['msg'].removeprefix('Value error, ')}"
    return f"key '{loc}' in {where}: {err['msg']} (got {err.get('input')!r})"


def _env_scalar(text: str) -> Any:
    """An environment value that reads as a TOML number or boolean (`500`, `true`) becomes
    one, so `batch_size = { "$env" = "BATCH" }` works; anything else stays a string."""
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        return text
    return value if isinstance(value, bool | int | float) else text


def resolve_env(value: Any, env: Mapping[str, str], source: str, key: str = "") -> Any:
    """Replace {"$env": "NAME"} tables and "${NAME}" inside strings with environment values,
    so secrets stay out of the file."""
    if isinstance(value, dict):
        if set(value) == {"$env"}:
            name = value["$env"]
            if name not in env:
                raise ConfigError(f"key '{key}' in {source} reads environment variable "
                                  f"{name}, which is not set; set it or write the value")
            return _env_scalar(env[name])
        return {k: resolve_env(v, env, source, f"{key}.{k}" if key else k)
                for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env(v, env, source, key) for v in value]
    if isinstance(value, str) and "${" in value:
        def sub(match: re.Match[str]) -> str:
            if match[1] not in env:
                raise ConfigError(f"key '{key}' in {source} reads environment variable "
                                  f"{match[1]}, which is not set; set it or write the value")
            return env[match[1]]
        return _ENV_REF.sub(sub, value)
    return value
