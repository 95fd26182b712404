"""The query model: Plausible's Stats API v2 request, validated.

pydantic checks the shape; the checks below check meaning, and every error names the field
and lists what would be valid, because an API client cannot read our source. Plausible
features Ferrite does not have are refused by name instead of being ignored.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ferrite.stats.store import (
    EVENT_DIMENSIONS,
    PROPS,
    TIME_DIMENSIONS,
    VISIT_DIMENSIONS,
    Condition,
    Filter,
    Logic,
    Not,
)

METRICS = ("visitors", "visits", "pageviews", "events", "views_per_visit", "bounce_rate",
           "visit_duration", "conversion_rate", "percentage")
#: Plausible metrics and dimensions Ferrite does not keep: refused by name.
UNSUPPORTED_METRICS = ("scroll_depth", "group_conversion_rate", "average_revenue",
                       "total_revenue", "time_on_page", "exit_rate")
UNSUPPORTED_DIMENSIONS = ("event:hostname", "visit:entry_page_hostname",
                          "visit:exit_page_hostname", "visit:utm_content", "visit:utm_term",
                          "visit:browser_version", "visit:os_version", "visit:region",
                          "visit:city", "visit:country_name", "visit:region_name",
                          "visit:city_name", "event:goal")
OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
UNSUPPORTED_OPERATORS = ("has_done", "has_not_done")
#: `event:goal` in filters: a custom event's name, or "Visit /path" for a page's views.
GOAL = "event:goal"
NOT_SET = ("(not set)", "(none)", "Direct / None")


class QueryError(ValueError):
    """A query that cannot run; `field` names the part of the request at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class Pagination(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int = Field(10_000, ge=1, le=10_000)
    offset: int = Field(0, ge=0)


class Comparisons(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Literal["previous_period", "year_over_year", "custom"]
    date_range: list[str] | None = None


class Include(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_labels: bool = False
    total_rows: bool = False
    imports: bool = False
    comparisons: Comparisons | None = None


class QueryBody(BaseModel):
    """The JSON body of POST /api/v2/query, as sent."""

    model_config = ConfigDict(extra="forbid")
    site_id: str = Field(min_length=1, max_length=255)
    metrics: list[str] = Field(min_length=1, max_length=len(METRICS))
    date_range: str | list[str]
    dimensions: list[str] = Field(default_factory=list, max_length=8)
    filters: list[Any] = Field(default_factory=list, max_length=50)
    order_by: list[tuple[str, Literal["asc", "desc"]]] | None = None
    include: Include = Field(default_factory=Include)
    pagination: Pagination = Field(default_factory=Pagination)

    @field_validator("site_id")
    @classmethod
    def _site(cls, value: str) -> str:
        return value.strip().lower().removeprefix("www.")


def parse_body(data: Any) -> QueryBody:
    """Validate a request body, raising QueryError that names the first bad field."""
    if not isinstance(data, dict):
        raise QueryError("body", "must be a JSON object with site_id, metrics and date_range")
    try:
        return QueryBody.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            valid = {"": QueryBody, "include": Include, "pagination": Pagination,
                     "include.comparisons": Comparisons}.get(where.rpartition(".")[0], QueryBody)
            raise QueryError(where, f"unknown key; valid keys: "
                             f"{', '.join(valid.model_fields)}") from None
        raise QueryError(where, err["msg"]) from None


def one_of(value: str, valid: tuple[str, ...], unsupported: tuple[str, ...], where: str,
           noun: str, also: str = "") -> str:
    """`value` if valid; else an error naming Plausible features Ferrite lacks as such."""
    choices = ", ".join(valid) + also
    if value in unsupported:
        raise QueryError(where, f"{value!r} is a Plausible {noun} Ferrite does not support; "
                         f"valid: {choices}")
    if value not in valid:
        raise QueryError(where, f"unknown {noun} {value!r}; valid: {choices}")
    return value


def check_metrics(metrics: list[str]) -> tuple[str, ...]:
    for i, metric in enumerate(metrics):
        one_of(metric, METRICS, UNSUPPORTED_METRICS, f"metrics[{i}]", "metric")
    if len(set(metrics)) != len(metrics):
        raise QueryError("metrics", "lists a metric more than once")
    return tuple(metrics)


def check_dimension(name: Any, where: str, extra: list[str], *, time_ok: bool = True) -> str:
    if not isinstance(name, str):
        raise QueryError(where, f"a dimension is a string such as \"event:page\", not {name!r}")
    if name.startswith(PROPS):
        key = name[len(PROPS):]
        if not key or len(key) > 300:
            raise QueryError(where, "event:props:KEY needs a prop key of 1-300 characters")
        return name
    valid = [*EVENT_DIMENSIONS, *VISIT_DIMENSIONS, *(f"visit:{c}" for c in extra)]
    if time_ok:
        valid += ["time", *TIME_DIMENSIONS]
    if name in valid:
        return name
    if name in UNSUPPORTED_DIMENSIONS or (name.startswith("visit:") and name not in valid):
        raise QueryError(where, f"{name!r} is not a dimension Ferrite keeps; valid: "
                         f"{', '.join(valid)}, event:props:KEY")
    if not time_ok and (name == "time" or name.startswith("time:")):
        raise QueryError(where, "time dimensions cannot be filtered on; set date_range instead")
    raise QueryError(where, f"unknown dimension {name!r}; valid: {', '.join(valid)}, "
                     f"event:props:KEY")


def check_filters(filters: list[Any], extra: list[str], max_pattern: int) -> Filter | None:
    """The top-level list is an implicit `and`."""
    parsed = tuple(_filter(f, f"filters[{i}]", extra, max_pattern)
                   for i, f in enumerate(filters))
    if not parsed:
        return None
    return parsed[0] if len(parsed) == 1 else Logic("and", parsed)


def _filter(raw: Any, where: str, extra: list[str], max_pattern: int) -> Filter:
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise QueryError(where, "a filter is a list such as [\"is\", \"visit:browser\", "
                         "[\"Firefox\"]], [\"and\", [...]], [\"or\", [...]] or [\"not\", [...]]")
    op = raw[0]
    if op in ("and", "or"):
        if len(raw) != 2 or not isinstance(raw[1], list) or not raw[1]:
            raise QueryError(where, f"[\"{op}\", [filter, ...]] takes one non-empty list")
        return Logic(op, tuple(_filter(f, f"{where}[1][{i}]", extra, max_pattern)
                               for i, f in enumerate(raw[1])))
    if op == "not":
        if len(raw) != 2:
            raise QueryError(where, "[\"not\", filter] takes one filter")
        return Not(_filter(raw[1], f"{where}[1]", extra, max_pattern))
    one_of(op, OPERATORS, UNSUPPORTED_OPERATORS, f"{where}[0]", "operator", ", and, or, not")
    if len(raw) not in (3, 4):
        raise QueryError(where, f"[\"{op}\", dimension, [values]] (and optionally "
                         f"{{\"case_sensitive\": false}})")
    values = raw[2]
    if not isinstance(values, list) or not values or not all(
            isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        raise QueryError(f"{where}[2]", "values must be a non-empty list of strings")
    if len(values) > 100:
        raise QueryError(f"{where}[2]", "at most 100 values")
    case_sensitive = True
    if len(raw) == 4:
        mods = raw[3]
        if not isinstance(mods, dict) or set(mods) - {"case_sensitive"} or \
                not isinstance(mods.get("case_sensitive", True), bool):
            raise QueryError(f"{where}[3]", "modifiers may only be {\"case_sensitive\": "
                             "true|false}")
        case_sensitive = mods.get("case_sensitive", True)
    texts = tuple(str(v) for v in values)
    if raw[1] == GOAL:
        return _goal(op, texts, where)
    dimension = check_dimension(raw[1], f"{where}[1]", extra, time_ok=False)
    if op.startswith("matches"):
        for i, pattern in enumerate(texts):
            check_pattern(pattern, f"{where}[2][{i}]", max_pattern)
    if op in ("is", "is_not"):
        texts = tuple("" if v in NOT_SET else v for v in texts)
    if dimension == "visit:device":
        texts = tuple(v.lower() for v in texts)
    return Condition(op, dimension, texts, case_sensitive)


def _goal(op: str, values: tuple[str, ...], where: str) -> Filter:
    """Plausible's goals: "Visit /path" is a pageview of /path, any other a custom event."""
    if op not in ("is", "contains"):
        raise QueryError(f"{where}[0]", "event:goal takes only 'is' and 'contains'")
    parts: list[Filter] = []
    for value in values:
        if value.startswith("Visit "):
            page_op = "matches" if "*" in value else op
            page = value[len("Visit "):]
            page_values = (wildcard(page),) if page_op == "matches" else (page,)
            parts.append(Logic("and", (Condition("is", "event:name", ("pageview",)),
                                       Condition(page_op, "event:page", page_values))))
        else:
            parts.append(Condition(op, "event:name", (value,)))
    return parts[0] if len(parts) == 1 else Logic("or", tuple(parts))


def wildcard(pattern: str) -> str:
    """Plausible's `*` wildcard (`**` crosses slashes too) as an anchored RE2 pattern."""
    out = []
    for part in re.split(r"(\*\*|\*)", pattern):
        out.append({"**": ".*", "*": "[^/]*"}.get(part, re2.escape(part) if part else ""))
    return "^" + "".join(out) + "$"


def check_pattern(pattern: str, where: str, max_length: int) -> None:
    """RE2 runs in linear time, so no pattern can hang a worker; the cap bounds memory."""
    if len(pattern) > max_length:
        raise QueryError(where, f"pattern is {len(pattern)} characters; at most {max_length} "
                         f"([stats] max_pattern_length)")
    try:
        re2.compile(pattern)
    except re2.error as exc:
        raise QueryError(where, f"not a valid RE2 regular expression: {exc}") from None
