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
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from ferrite.core.errors import ConfigError
from ferrite.core.urls import site_name

DEFAULT_FILE = "ferrite.toml"
EMBEDDED = "<embedded default>"
#: The chain a config without [pipeline] plugins runs (the embedded default's too).
#: The SQLite file of the default chain, and of the daily salts unless configured apart.
DEFAULT_DATABASE = "ferrite.db"
DEFAULT_PLUGINS = ("client_ip", "useragent", "bots", "session", "referrer", "sqlite")
BIND = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(?P<port>\d{1,5})$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

M = TypeVar("M", bound=BaseModel)


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
    sink_timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="For the edge: a sink write that takes longer "
        "counts as failed; the sink is then skipped (its batches spooled) until it answers.")
    sink_buffer_batches: int = Field(8, ge=1, le=10_000, description="For the edge: batches "
                                     "that may wait for one sink before the writer waits.")
    spool_dir: str | None = Field(
        "ferrite-spool", description="Dead-letter spool for batches a sink could not take; "
        "empty disables it (such batches then fail the request).")


class EdgeTable(Table):
    """`[edge]`: the HTTP server. Plain data here; ferrite.edge reads it."""

    bind: str = Field("127.0.0.1:8000",
                      description="HOST:PORT to listen on; port 0 picks a free one.")
    workers: int = Field(1, ge=1, le=64, description="Processes sharing the listening socket.")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Proxies whose forwarding headers are believed (default for "
        "[plugins.client_ip] trusted_proxies).",
    )
    sites: list[str] = Field(default_factory=list,
                             description="Site domains to accept; empty accepts any.")
    cors_origins: list[str] = Field(default_factory=list,
                                    description="Origins allowed to post events; empty allows any.")
    ack: Literal["stored", "queued"] = Field(
        "stored", description="Answer after every sink stored the events, or on enqueue.")
    queue_size: int = Field(1000, ge=1, le=1_000_000,
                            description="Requests waiting for the writer before 503s.")
    max_body_bytes: int = Field(65_536, ge=1024, le=16 * 1024 * 1024)
    max_events: int = Field(100, ge=1, le=10_000, description="Events in one POST.")
    max_props: int = Field(30, ge=0, le=1000, description="Props on one event.")
    max_prop_key: int = Field(300, ge=1, le=10_000, description="Characters in a prop key.")
    max_prop_value: int = Field(2000, ge=1, le=100_000,
                                description="Characters in a prop value.")
    max_url: int = Field(2048, ge=64, le=65_536, description="Characters in a URL or referrer.")
    graceful_timeout: float = Field(10.0, ge=0, le=600,
                                    description="Seconds in-flight requests get at shutdown.")
    read_timeout: int = Field(10, ge=1, le=600,
                              description="Seconds a client may take to send its request.")
    keep_alive_timeout: float = Field(5.0, ge=0, le=600)
    retry_after: int = Field(1, ge=1, le=3600, description="Retry-After seconds on 503.")
    static_dir: str | None = Field(
        None, description="A folder of pages to serve at / (the demo site, or your own).")
    umami_websites: dict[str, str] = Field(
        default_factory=dict,
        description="Umami website ids and the site each one's hits belong to, so Umami's "
        "tracker can post to /api/send unchanged.")

    @field_validator("bind")
    @classmethod
    def _host_port(cls, value: str) -> str:
        match = BIND.match(value)
        if match is None:
            raise ValueError(f"bind must be HOST:PORT, such as 127.0.0.1:8000, 0.0.0.0:8000 or "
                             f"[::1]:8000 (got {value!r})")
        if int(match["port"]) > 65535:
            raise ValueError(f"port {match['port']} is out of range; use 1-65535, or 0 for "
                             f"any free port")
        return value

    @field_validator("umami_websites")
    @classmethod
    def _umami_sites(cls, value: dict[str, str]) -> dict[str, str]:
        out = {}
        for website, site in value.items():
            if not website.strip() or not site.strip() or "/" in site or " " in site.strip():
                raise ValueError(f"umami_websites maps {website!r} to {site!r}; map each "
                                 f"Umami website id to a site domain such as \"example.com\"")
            out[website.strip().lower()] = site_name(site)
        return out


DEFAULT_ASSETS = (
    "css", "js", "mjs", "map", "png", "jpg", "jpeg", "gif", "webp", "avif", "svg", "ico",
    "bmp", "tif", "tiff", "woff", "woff2", "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg",
    "wav", "flac", "pdf", "zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "dmg", "exe", "iso",
    "xml", "txt", "json", "rss", "atom", "wasm",
)


class IngestTable(Table):
    """`[ingest]`: `ferrite ingest` for access logs."""

    format: str = Field("auto", description="auto, combined, common, combined-vhost, "
                        "common-vhost, caddy, bunny, or an Apache LogFormat string.")
    site: str | None = Field(None, description="Site of every line; default: the logged "
                             "virtual host.")
    assets: list[str] = Field(default_factory=lambda: list(DEFAULT_ASSETS),
                              description="File extensions that are not page views.")
    poll_seconds: float = Field(0.5, gt=0, le=60,
                                description="How often --follow looks for new lines.")
    parallel: bool = Field(True, description="Parse in a second process while this one runs "
                           "the chain (files read to their end, on machines with 2+ cores).")


@dataclass(frozen=True)
class Config:
    """A validated configuration: the pipeline table plus each plugin's raw table.

    Plugin tables are validated later, by the plugin manager, against each plugin's own
    settings model (only it knows the keys).
    """

    source: str
    pipeline: PipelineTable
    plugin_tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    edge: EdgeTable = field(default_factory=EdgeTable)
    ingest: IngestTable = field(default_factory=IngestTable)
    #: True when the file did not list [pipeline] plugins and the default chain runs.
    default_chain: bool = False

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
    known = {"pipeline", "plugins", "edge", "ingest"}
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
    edge = check(EdgeTable, raw.get("edge", {}), f"[edge] in {source}")
    ingest = check(IngestTable, raw.get("ingest", {}), f"[ingest] in {source}")
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
    if problems or pipeline is None or edge is None or ingest is None:
        raise ConfigError("\n".join(problems))
    return Config(source=source, pipeline=pipeline, plugin_tables=tables, edge=edge,
                  ingest=ingest, default_chain=default_chain)


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
