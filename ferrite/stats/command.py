"""`ferrite stats`, `ferrite keys` and `ferrite build-stats`: the read side over SSH.

Everything printed comes from strangers on the internet (pages, referrers, prop values), so
control and bidirectional-formatting characters are escaped before they reach a terminal,
and CSV cells that a spreadsheet would run as a formula are defused.
"""

from __future__ import annotations

import csv
import json
import sys
import unicodedata
from typing import Any, TextIO

from ferrite.core.config import Config
from ferrite.core.errors import FerriteError
from ferrite.stats import keys, v1
from ferrite.stats.engine import Answer, Engine, open_store
from ferrite.stats.model import OPERATORS, QueryError
from ferrite.stats.store import QueryTimeout

DEFAULT_METRICS = "visitors,visits,pageviews,bounce_rate,visit_duration"
COUNTS = ("visitors", "visits", "pageviews", "events")


class UsageError(FerriteError):
    pass


def safe(text: str) -> str:
    """Control and format characters (ESC, CR, bidi overrides) as visible escapes."""
    if text.isprintable():
        return text
    return "".join(ch if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")
                   else ch.encode("unicode_escape").decode("ascii") for ch in text)


def spreadsheet_safe(value: Any) -> Any:
    """A text cell starting with = + - @ (or a tab/CR) is data, not a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def parse_filter(text: str, i: int) -> list[Any]:
    """`DIM OP VALUE[|VALUE]` (OP: is, is_not, contains, contains_not, matches,
    matches_not) or v1's `DIM==VALUE`, `!=`, `~`, `!~`."""
    parts = text.split(None, 2)
    if len(parts) == 3 and parts[1] in OPERATORS:
        return [parts[1], parts[0], v1.split_values(parts[2])]
    try:
        return v1.parse_filters(text)[0]
    except (QueryError, IndexError):
        raise UsageError(f"--filter {text!r}: write DIMENSION OPERATOR VALUE, such as "
                         f"\"visit:source is Google|Bing\" or \"event:page contains /blog\"; "
                         f"operators: {', '.join(OPERATORS)}") from None


def date_range(period: str) -> str | list[str]:
    if "," in period:
        return [p.strip() for p in period.split(",", 1)]
    return period


def stats(config: Config, *, site: str | None, period: str, metrics: str, by: str | None,
          filters: list[str], compare: bool, limit: int, fmt: str,
          out: TextIO = sys.stdout) -> int:
    engine = Engine(config)
    try:
        site = site or _only_site(engine)
        body: dict[str, Any] = {
            "site_id": site, "date_range": date_range(period),
            "metrics": [m.strip() for m in metrics.split(",") if m.strip()],
            "filters": [parse_filter(f, i) for i, f in enumerate(filters)],
        }
        totals = engine.answer({**body, "metrics": [m for m in body["metrics"]
                                                     if m != "percentage"],
                                "include": {"comparisons": {"mode": "previous_period"}}})
        breakdown = None
        if by:
            extra = {"comparisons": {"mode": "previous_period"}} if compare else {}
            breakdown = engine.answer({**body, "dimensions": [by], "include": extra,
                                       "pagination": {"limit": limit}})
    except QueryError as exc:
        raise UsageError(f"{_option(exc.field)}: {str(exc).split(': ', 1)[-1]}") from None
    except QueryTimeout:
        raise UsageError(f"the query took longer than {config.stats.query_timeout_seconds:g} s "
                         f"([stats] query_timeout_seconds); use a shorter --period, or run "
                         f"`ferrite build-stats` first") from None
    finally:
        engine.close()
    if fmt == "json":
        data = {"totals": totals.v2()}
        if breakdown is not None:
            data["breakdown"] = breakdown.v2()
        json.dump(data, out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif fmt == "csv":
        _csv(breakdown or totals, out)
    else:
        _tables(totals, breakdown, out)
    return 0


def _option(field: str) -> str:
    head = field.split("[")[0].split(".")[0]
    return {"site_id": "--site", "date_range": "--period", "metrics": "--metrics",
            "dimensions": "--by", "filters": "--filter", "pagination": "--limit"}.get(
        head, head)


def _only_site(engine: Engine) -> str:
    sites = engine.store.sites()
    if len(sites) == 1:
        return sites[0]
    if not sites:
        raise UsageError("no events stored yet; nothing to show")
    raise UsageError(f"this database holds several sites; choose one with --site: "
                     f"{', '.join(safe(s) for s in sites[:20])}")


def _fmt(metric: str, value: Any) -> str:
    if value is None:
        return "-"
    if metric in ("bounce_rate", "conversion_rate", "percentage"):
        return f"{value:g}%"
    if metric == "visit_duration":
        minutes, seconds = divmod(int(value), 60)
        return f"{minutes}m {seconds:02d}s" if minutes else f"{seconds}s"
    if metric == "views_per_visit":
        return f"{value:.2f}"
    return f"{value:,}"


def _change(metric: str, value: Any) -> str:
    if value is None:
        return ""
    unit = " pts" if metric in ("bounce_rate", "conversion_rate", "percentage") else "%"
    return f"{value:+g}{unit}"


def _tables(totals: Answer, breakdown: Answer | None, out: TextIO) -> None:
    plan = totals.plan
    first, last = plan.period.labels()
    zone = str(plan.period.zone)
    line = f"{safe(plan.site)}  {first[:16].replace('T', ' ')} - {last[:16].replace('T', ' ')}" \
           f" ({zone})"
    if plan.comparison is not None:
        c0, c1 = plan.comparison.labels()
        line += f", compared with {c0[:10]} - {c1[:10]}"
    out.write(line + "\n\n")
    row = totals.rows[0]
    width = max(len(m) for m in plan.metrics)
    for i, metric in enumerate(plan.metrics):
        change = _change(metric, row.comparison["change"][i]) if row.comparison else ""
        before = _fmt(metric, row.comparison["metrics"][i]) if row.comparison else ""
        out.write(f"  {metric:<{width}}  {_fmt(metric, row.metrics[i]):>12}  {change:>9}"
                  f"  (was {before})\n")
    if breakdown is None:
        return
    bplan = breakdown.plan
    header = [bplan.dimensions[0], *bplan.metrics]
    if bplan.comparison is not None:
        header.append(f"{bplan.metrics[0]} change")
    lines = [header]
    for r in breakdown.rows:
        cells = [safe(r.dimensions[0])[:60], *(_fmt(m, v) for m, v in
                                               zip(bplan.metrics, r.metrics, strict=True))]
        if r.comparison is not None:
            cells.append(_change(bplan.metrics[0], r.comparison["change"][0]))
        lines.append(cells)
    widths = [max(len(c[i]) for c in lines) for i in range(len(header))]
    out.write("\n")
    for n, cells in enumerate(lines):
        first_cell = cells[0].ljust(widths[0])
        rest = "  ".join(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        out.write(f"  {first_cell}  {rest}\n")
        if n == 0:
            out.write("  " + "  ".join("-" * w for w in widths) + "\n")
    if not breakdown.rows:
        out.write("  (no events)\n")


def _csv(answer: Answer, out: TextIO) -> None:
    writer = csv.writer(out)
    plan = answer.plan
    comparison = any(r.comparison for r in answer.rows)
    writer.writerow([*plan.dimensions, *plan.metrics,
                     *(f"{m}_change" for m in plan.metrics if comparison)])
    for r in answer.rows:
        writer.writerow([*(spreadsheet_safe(d) for d in r.dimensions), *r.metrics,
                         *(r.comparison["change"] if r.comparison else [])])


def keys_command(config: Config, action: str, *, sites: list[str], name: str,
                 key_id: str | None, as_json: bool, out: TextIO = sys.stdout) -> int:
    store = open_store(config)
    try:
        if action == "create":
            if not sites:
                raise UsageError("keys create needs --site DOMAIN (repeat it for several sites)")
            key, record = keys.create(store, sites, name)
            out.write(f"{key}\n")
            print(f"created key {record.id} for {', '.join(record.sites)}; it is shown only "
                  f"once, store it now", file=sys.stderr)
            return 0
        if action == "list":
            records = store.list_keys()
            if as_json:
                json.dump([{"id": r.id, "name": r.name, "sites": list(r.sites),
                            "created": r.created.isoformat(),
                            "revoked": r.revoked.isoformat() if r.revoked else None}
                           for r in records], out, indent=2)
                out.write("\n")
                return 0
            if not records:
                out.write("no keys; create one with `ferrite keys create --site DOMAIN`\n")
            for r in records:
                state = f"revoked {r.revoked:%Y-%m-%d}" if r.revoked else "active"
                out.write(f"{r.id}  {state:<18} {r.created:%Y-%m-%d}  "
                          f"{', '.join(safe(s) for s in r.sites)}  {safe(r.name)}\n")
            return 0
        if not key_id:
            raise UsageError("keys revoke needs the key's id (see `ferrite keys list`)")
        if not store.revoke_key(key_id):
            raise UsageError(f"no active key has id {key_id!r}; see `ferrite keys list`")
        out.write(f"revoked key {key_id}\n")
        return 0
    finally:
        store.close()


def build(config: Config, *, site: str | None, out: TextIO = sys.stderr) -> int:
    engine = Engine(config)
    if getattr(engine.store, "build", None) is None:
        out.write("this storage plugin keeps no rollups; nothing to build\n")
        return 0
    try:
        count = engine.build(site=site, progress=lambda s, d: out.write(f"  {safe(s)} {d}\n"))
    finally:
        engine.close()
    out.write(f"built the rollups of {count} day(s)\n")
    return 0
