"""Serving the edge app with hypercorn's trio worker, in one process or several.

One process: programmatic `hypercorn.trio.serve`, SIGINT/SIGTERM trigger a graceful stop
(listeners close, in-flight requests finish, the stream drains, sinks close). Several:
the listening socket is bound here, then hypercorn's own runner starts N spawned workers
that share it and stops them gracefully on the same signals.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
from datetime import timedelta
from functools import partial
from typing import TextIO, TypeVar

import trio
from hypercorn.config import Config as HyperConfig
from hypercorn.run import run as hypercorn_run
from hypercorn.trio import serve as hypercorn_serve

from ferrite.core.config import Config
from ferrite.core.errors import ConfigError, FerriteError, StoreUnavailable
from ferrite.core.manager import Plugins
from ferrite.core.sites import sites_of
from ferrite.edge.app import create_app
from ferrite.edge.hits import HEADER_LIMIT
from ferrite.edge.metrics import MULTIPROC_ENV
from ferrite.edge.settings import EdgeTable
from ferrite.edge.snippet import snippet_lines

CONFIG_ENV = "FERRITE_CONFIG"
EDGE_ENV = "FERRITE_EDGE"  # the [edge] table after command-line overrides, as JSON
DEBUG_ENV = "FERRITE_DEBUG"  # --debug: log why hits are discarded


def hypercorn_config(edge: EdgeTable) -> HyperConfig:
    """Deliberate server settings: hypercorn's Config silently ignores unknown keys, so
    ours are validated in [edge] first and set here one by one."""
    hc = HyperConfig()
    hc.bind = [edge.bind]
    hc.worker_class = "trio"
    hc.workers = edge.workers
    hc.accesslog = None  # an access log would record every visitor's IP address
    hc.errorlog = logging.getLogger("hypercorn.error")
    hc.loglevel = "WARNING"
    hc.graceful_timeout = edge.graceful_timeout
    hc.read_timeout = edge.read_timeout
    hc.keep_alive_timeout = edge.keep_alive_timeout
    hc.h11_max_incomplete_size = HEADER_LIMIT
    hc.h2_max_header_list_size = HEADER_LIMIT
    hc.include_server_header = False
    return hc


def banner(config: Config, url: str, out: TextIO) -> None:
    """What a newcomer needs after `ferrite serve`: the URL, the snippets, where data goes."""
    plugins = Plugins(config)
    stores = []
    for name, _ in plugins.sinks():
        settings = plugins.loaded[name].settings
        path = getattr(settings, "path", None)
        database = getattr(settings, "url", None)
        if isinstance(database, str):  # never the password
            from ferrite.plugins.postgres import masked

            stores.append(f"{name} -> {masked(database)}")
        else:
            stores.append(f"{name} -> {os.path.abspath(path)}" if path else name)
    lines = [
        f"Ferrite is listening on {url}",
        f"  config:   {config.source}",
        f"  chain:    {' -> '.join(p.name for p in plugins.in_stage_order())}"
        + (" (default)" if config.default_chain else ""),
        f"  storage:  {', '.join(stores) or 'no sink configured: events are dropped'}",
        f"  workers:  {config.edge.workers}, ack = {config.edge.ack}",
        "  embed in your pages:",
        *(f"    {line}" for line in snippet_lines(url, sites_of(config).names())),
        f"  health:   {url}/healthz  {url}/readyz  {url}/metrics",
        (f"  stats:    {url}/api/v2/query and {url}/api/v1/stats/... (Plausible's Stats "
         f"API;\n            make a key with `ferrite keys create --site DOMAIN`), or "
         f"`ferrite stats`") if config.stats.enabled and plugins.hook.ferrite_stats_store()
        else "  stats:    off ([stats] enabled = false, or no storage plugin answers queries)",
        "  testing:  hits from localhost, headless or automated browsers and tools such as",
        "            curl are not counted; ferrite serve --debug logs why each was discarded",
    ]
    lines.append(dashboard_line(config, plugins, url))
    if config.edge.static_dir:
        lines.append(f"  pages:    {url}/ from {os.path.abspath(config.edge.static_dir)}")
    print("\n".join(lines), file=out, flush=True)


def dashboard_line(config: Config, plugins: Plugins, url: str) -> str:
    """Where the dashboard is; on a first run without users, the one-time setup link."""
    if not config.dashboard.enabled:
        return "  dashboard: off ([dashboard] enabled = false)"
    accounts = plugins.hook.ferrite_account_store()
    if accounts is None or not (config.stats.enabled and plugins.hook.ferrite_stats_store()):
        return "  dashboard: off (needs [stats] enabled and a storage plugin such as sqlite)"
    from ferrite.accounts.service import setup_token

    hours = config.dashboard.setup_link_hours
    try:
        token = setup_token(accounts, timedelta(hours=hours))
    except StoreUnavailable as exc:
        return (f"  dashboard: {url}/dashboard/ ({exc}: no setup link; run `ferrite users "
                f"add EMAIL --role admin` once it answers)")
    if token is None:
        return f"  dashboard: {url}/dashboard/"
    return (f"  dashboard: {url}/dashboard/\n"
            f"  set up:   {url}/setup/{token}\n"
            f"            (no user yet: this one-time link creates the first admin; it "
            f"expires in {hours:g} h;\n            or run `ferrite users add EMAIL --role "
            f"admin`)")


async def serve(config: Config, *, out: TextIO = sys.stdout,
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve in this process until SIGINT or SIGTERM, then stop gracefully."""
    app = create_app(config)
    hc = hypercorn_config(config.edge)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def shutdown_trigger() -> None:
            async for _ in signals:
                return

        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(hypercorn_serve, app, hc,
                                                shutdown_trigger=shutdown_trigger))
            banner(config, binds[0], out)
            task_status.started(binds)


def run_workers(config: Config, config_path: str | None, out: TextIO = sys.stdout) -> int:
    """Bind once, then let hypercorn run `workers` processes on the shared socket."""
    hc = hypercorn_config(config.edge)
    sockets = hc.create_sockets()
    (sock,) = sockets.insecure_sockets
    sock.listen(hc.backlog)  # connections wait in the backlog until a worker accepts them
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    hc.bind = [f"fd://{sock.fileno()}"]
    hc.application_path = "ferrite.edge.worker:app"
    os.environ[CONFIG_ENV] = os.path.abspath(config_path) if config_path else ""
    os.environ[EDGE_ENV] = config.edge.model_dump_json()
    # One coherent /metrics across workers (ferrite.edge.metrics): a fresh shared folder,
    # unless the operator chose one.
    own_folder = not os.environ.get(MULTIPROC_ENV)
    if own_folder:
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="ferrite-metrics-")
    banner(config, url, out)
    try:
        return hypercorn_run(hc)
    finally:
        if own_folder:
            shutil.rmtree(os.environ.pop(MULTIPROC_ENV), ignore_errors=True)


def main(config: Config, config_path: str | None, *, bind: str | None,
         workers: int | None, static_dir: str | None = None, debug: bool = False) -> int:
    updates = {k: v for k, v in (("bind", bind), ("workers", workers),
                                 ("static_dir", static_dir)) if v is not None}
    if updates:
        from ferrite.core.config import validate_table

        edge = validate_table(EdgeTable, {**config.edge.model_dump(mode="json"), **updates},
                              "the command line")
        config = config.with_table("edge", edge)
    if config.edge.static_dir is not None and not os.path.isdir(config.edge.static_dir):
        raise ConfigError(f"static folder {config.edge.static_dir!r} does not exist; pass an "
                          f"existing folder to --static (or [edge] static_dir)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # the pools' own reconnect chatter: Ferrite logs each outage once, its URL masked
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    if debug:  # children (--workers) inherit it through the environment
        os.environ[DEBUG_ENV] = "1"
    if os.environ.get(DEBUG_ENV):
        logging.getLogger("ferrite").setLevel(logging.DEBUG)
    try:
        if config.edge.workers > 1:
            return run_workers(config, config_path)
        trio.run(serve, config)
    except (OSError, BaseExceptionGroup) as exc:
        failed = _startup_failure(exc)
        if failed is not None:
            raise FerriteError(failed) from None
        error = _os_error(exc)
        if error is None:
            raise
        raise ConfigError(bind_problem(config.edge.bind, error)) from None
    return 0


def _startup_failure(exc: BaseException) -> str | None:
    """The message of a failed start (hypercorn's LifespanFailureError, wrapped by trio)."""
    from hypercorn.utils import LifespanFailureError

    failure = _inner(exc, LifespanFailureError)
    if failure is None:
        return None
    quoted = re.search(r"'(.*)'$", str(failure), re.S)
    return f"the node could not start: {quoted[1] if quoted else failure}"


def _os_error(exc: BaseException) -> OSError | None:
    """The OSError behind a failed bind, also when trio wraps it in an exception group."""
    return _inner(exc, OSError)


E = TypeVar("E", bound=BaseException)


def _inner(exc: BaseException, kind: type[E]) -> E | None:
    """`exc` if it is a `kind`, else the first `kind` in its (nested) exception groups."""
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _inner(inner, kind)
            if found is not None:
                return found
    return None


def bind_problem(bind: str, error: OSError) -> str:
    """One line: what is wrong with the listen address, and what to do."""
    host, _, port = bind.rpartition(":")
    if error.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is already in use by another program; stop it, or "
                f"pick another port with --bind {host}:PORT (0 picks a free one)")
    if error.errno == errno.EADDRNOTAVAIL:
        return (f"{host} is not an address of this machine; use 127.0.0.1 (this machine "
                f"only), 0.0.0.0 (every interface) or one of its own addresses")
    if error.errno == errno.EACCES:
        return (f"no permission to listen on port {port}; ports under 1024 need root or "
                f"CAP_NET_BIND_SERVICE: use a port such as 8000 behind a reverse proxy")
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host {host!r} in --bind; use an IP address or a known name"
    return f"cannot listen on {bind}: {error.strerror or error}"
