"""The `ferrite` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib import metadata

from ferrite.core.config import load_config
from ferrite.core.errors import FerriteError
from ferrite.core.manager import STAGES, LoadedPlugin, Plugins
from ferrite.core.sites import sites_of


def _stage_name(plugin: LoadedPlugin) -> str:
    return STAGES[plugin.stage].removeprefix("ferrite_") if plugin.stage < len(STAGES) \
        else "lifecycle"


def cmd_plugins(args: argparse.Namespace) -> int:
    plugins = Plugins(load_config(args.config))
    ordered = plugins.in_stage_order()
    if args.json:
        data = {
            "config": plugins.config.source,
            "plugins": [
                {
                    "name": p.name,
                    "stage": _stage_name(p),
                    "source": {"kind": p.source.kind, "module": p.source.module,
                               "distribution": p.source.distribution,
                               "version": p.source.version},
                    "hooks": p.hooks,
                }
                for p in ordered
            ],
        }
        print(json.dumps(data, indent=2))
        return 0
    print(f"config: {plugins.config.source}")
    width = max((len(p.name) for p in ordered), default=0)
    for i, p in enumerate(ordered, 1):
        print(f"{i:>2}. {p.name:<{width}}  {_stage_name(p):<11} {p.source}")
        print(f"    {' ' * width}  hooks: {', '.join(p.hooks) or '(none)'}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    plugins = Plugins(load_config(args.config))
    sites_of(plugins.config)  # [sites] and its older spellings must not both be used
    names = ", ".join(p.name for p in plugins.in_stage_order())
    default = " (the default chain: [pipeline] plugins is not set)" \
        if plugins.config.default_chain else ""
    print(f"{plugins.config.source}: OK ({len(plugins.loaded)} plugins: {names}){default}")
    if not plugins.sinks():
        print("warning: no plugin stores events (no ferrite_write hook); add a sink such as "
              "'sqlite' to [pipeline] plugins", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ferrite.edge import server  # the web stack loads only for this command

    return server.main(load_config(args.config), args.config, bind=args.bind,
                       workers=args.workers, static_dir=args.static, debug=args.debug)


def cmd_ingest(args: argparse.Namespace) -> int:
    from ferrite.ingest import command

    return command.main(load_config(args.config), args.files, fmt=args.format,
                        site=args.site, follow_file=args.follow)


def cmd_replay(args: argparse.Namespace) -> int:
    from ferrite.core.pipeline import Pipeline

    with Pipeline(load_config(args.config)) as pipeline:
        if pipeline.spool is None:
            print("the dead-letter spool is disabled ([pipeline] spool_dir)", file=sys.stderr)
            return 1
        results = pipeline.replay(args.sink)
    if not results:
        print(f"nothing spooled in {pipeline.spool.directory}")
        return 0
    for name, (replayed, left) in results.items():
        print(f"{name}: {replayed} events replayed, {left} still spooled")
    return 1 if any(left for _, left in results.values()) else 0


def cmd_stats(args: argparse.Namespace) -> int:
    from ferrite.stats import command

    fmt = "json" if args.json else "csv" if args.csv else "table"
    return command.stats(load_config(args.config), site=args.site, period=args.period,
                         metrics=args.metrics, by=args.by, filters=args.filter or [],
                         compare=args.compare, limit=args.limit, fmt=fmt)


def cmd_keys(args: argparse.Namespace) -> int:
    from ferrite.stats import command

    return command.keys_command(load_config(args.config), args.action, sites=args.site or [],
                                name=args.name or "", key_id=args.id, as_json=args.json)


def cmd_users(args: argparse.Namespace) -> int:
    from ferrite.accounts import command

    return command.users_command(load_config(args.config), args.action, email=args.email,
                                 role=args.role, sites=args.site or [],
                                 password_stdin=args.password_stdin, as_json=args.json)


def cmd_build_stats(args: argparse.Namespace) -> int:
    from ferrite.stats import command

    return command.build(load_config(args.config), site=args.site)


def _version() -> str:
    try:
        return metadata.version("ferrite-analytics")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ferrite", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ferrite {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument("--config", metavar="PATH",
                       help="config file (default: ./ferrite.toml, else the embedded default)")
        return p

    p = add("plugins", "list the resolved plugin chain in stage order")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_plugins)
    add("check", "validate the config and every plugin's settings").set_defaults(func=cmd_check)
    p = add("serve", "run the edge server (pixel, script and event endpoints)")
    p.add_argument("--bind", metavar="HOST:PORT", help="listen address (default: [edge] bind, "
                   "127.0.0.1:8000); port 0 picks a free port")
    p.add_argument("--workers", type=int, metavar="N",
                   help="processes sharing the socket (default: [edge] workers, 1)")
    p.add_argument("--static", metavar="DIR",
                   help="also serve the pages in DIR at / (try examples/site)")
    p.add_argument("--debug", action="store_true",
                   help="log why each discarded hit was discarded (never its IP or user agent)")
    p.set_defaults(func=cmd_serve)
    p = add("ingest", "run web-server access logs through the chain into the sinks")
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="log files; .gz is read directly; - reads standard input")
    p.add_argument("--format", metavar="FMT",
                   help="auto (default), combined, common, combined-vhost, common-vhost, "
                   "caddy, bunny, or an Apache LogFormat string")
    p.add_argument("--site", metavar="DOMAIN",
                   help="the site every line belongs to (default: the logged virtual host)")
    p.add_argument("--follow", action="store_true",
                   help="keep reading the file as it grows and rotates, until interrupted")
    p.set_defaults(func=cmd_ingest)
    p = add("replay", "send batches from the dead-letter spool back through their sinks")
    p.add_argument("--sink", metavar="NAME", help="only this sink's spool")
    p.set_defaults(func=cmd_replay)
    p = add("stats", "print a site's numbers: totals against the previous period, then a "
            "breakdown")
    p.add_argument("--site", metavar="DOMAIN", help="the site (default: the only one stored)")
    p.add_argument("--period", default="7d", metavar="RANGE",
                   help="day, 7d, 28d, 30d, 91d, month, 6mo, 12mo, year, all, realtime, or "
                   "FROM,TO dates (default: 7d, the seven days before today)")
    p.add_argument("--metrics", default="visitors,visits,pageviews,bounce_rate,visit_duration",
                   metavar="M,M", help="comma-separated metrics (see docs/stats.md)")
    p.add_argument("--by", metavar="DIMENSION",
                   help="break down by event:page, visit:source, visit:browser, time:day, ...")
    p.add_argument("--filter", action="append", metavar="'DIM OP VALUE'",
                   help="such as 'visit:source is Google|Bing' or 'event:page contains /blog';"
                   " repeat to combine (and)")
    p.add_argument("--compare", action="store_true",
                   help="also compare each breakdown row with the previous period")
    p.add_argument("--limit", type=int, default=10, metavar="N", help="breakdown rows (10)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the API's JSON answers")
    out.add_argument("--csv", action="store_true", help="print the breakdown as CSV")
    p.set_defaults(func=cmd_stats)
    p = add("keys", "create, list and revoke Stats API keys")
    p.add_argument("action", choices=("create", "list", "revoke"))
    p.add_argument("id", nargs="?", help="the key id to revoke")
    p.add_argument("--site", action="append", metavar="DOMAIN",
                   help="a site the new key may read (repeatable)")
    p.add_argument("--name", metavar="TEXT", help="a note saying who uses the key")
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.set_defaults(func=cmd_keys)
    p = add("users", "add, list, edit and remove dashboard users, or change a password")
    p.add_argument("action", choices=("add", "list", "edit", "remove", "passwd"))
    p.add_argument("email", nargs="?", metavar="EMAIL", help="the user's email")
    p.add_argument("--role", choices=("admin", "viewer"),
                   help="admins see every site and manage keys and links; viewers see their "
                   "--site (add: default viewer; edit: unchanged if left out)")
    p.add_argument("--site", action="append", metavar="DOMAIN",
                   help="a site a viewer may read (repeatable; edit replaces the list)")
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input instead of a prompt")
    p.add_argument("--json", action="store_true", help="list as JSON")
    p.set_defaults(func=cmd_users)
    p = add("build-stats", "count closed days into the stats rollups (a database written "
            "before them, or after a large `ferrite ingest`)")
    p.add_argument("--site", metavar="DOMAIN", help="only this site")
    p.set_defaults(func=cmd_build_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FerriteError as exc:
        print(f"ferrite: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
