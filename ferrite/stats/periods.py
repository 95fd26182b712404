"""Date ranges in a site's time zone, turned into UTC instants.

Every day, week and month starts at local midnight in the site's IANA zone (zoneinfo makes
that DST-correct: a spring-forward day has 23 hours). A range of dates includes both ends,
as Plausible's; internally it is the half-open UTC interval [start, end).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHORTCUTS = ("day", "24h", "7d", "28d", "30d", "91d", "month", "6mo", "12mo", "year", "all",
             "realtime")
REALTIME = timedelta(minutes=30)


class PeriodError(ValueError):
    """A date range that cannot be resolved; the message says what would be valid."""


@dataclass(frozen=True)
class Period:
    start: datetime  # aware UTC, included
    end: datetime  # aware UTC, excluded
    zone: ZoneInfo
    #: The local dates covered when the range is made of whole days, else None.
    first: date | None = None
    last: date | None = None

    @property
    def whole_days(self) -> bool:
        return self.first is not None

    def labels(self) -> list[str]:
        """The range as Plausible echoes it: local ISO date-times with their offsets."""
        if self.first is not None and self.last is not None:
            start = local_midnight(self.first, self.zone).astimezone(self.zone)
            end = local_midnight(self.last + timedelta(days=1), self.zone) - timedelta(seconds=1)
            return [start.isoformat(), end.astimezone(self.zone).isoformat()]
        return [self.start.astimezone(self.zone).isoformat(timespec="seconds"),
                self.end.astimezone(self.zone).isoformat(timespec="seconds")]

    @property
    def days(self) -> int:
        if self.first is None or self.last is None:
            return 0
        return (self.last - self.first).days + 1


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local day begins (DST-correct; fold 0 for an ambiguous time)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def of_dates(first: date, last: date, zone: ZoneInfo) -> Period:
    if last < first:
        raise PeriodError(f"date_range ends ({last}) before it starts ({first})")
    return Period(local_midnight(first, zone), local_midnight(last + timedelta(days=1), zone),
                  zone, first, last)


def _month_start(day: date, back: int = 0) -> date:
    months = day.year * 12 + day.month - 1 - back
    return date(months // 12, months % 12 + 1, 1)


def resolve(date_range: str | list[str], zone: ZoneInfo, now: datetime,
            first_day: date | None = None, *, relative_to: date | None = None,
            include_today: bool = False) -> Period:
    """Resolve a v2 `date_range`. Relative ranges end yesterday, as Plausible's v2 ("7d" is
    the seven days before today); `include_today` (v1's) ends them on `relative_to`."""
    today = relative_to or now.astimezone(zone).date()
    if isinstance(date_range, list):
        return custom(date_range, zone)
    last = today if include_today else today - timedelta(days=1)
    match date_range:
        case "day":
            return of_dates(today, today, zone)
        case "realtime":
            return Period(now - REALTIME, now, zone)
        case "24h":
            return Period(now - timedelta(hours=24), now, zone)
        case "7d" | "28d" | "30d" | "91d":
            return of_dates(last - timedelta(days=int(date_range[:-1]) - 1), last, zone)
        case "month":
            return of_dates(_month_start(today), today, zone)
        case "6mo" | "12mo":
            months = int(date_range.removesuffix("mo"))
            end = _month_start(today, -1) - timedelta(days=1)
            return of_dates(_month_start(today, months - 1), end, zone)
        case "year":
            return of_dates(date(today.year, 1, 1), today, zone)
        case "all":
            return of_dates(min(first_day or today, today), today, zone)
    raise PeriodError(f"date_range {date_range!r} is not valid; use one of "
                      f"{', '.join(SHORTCUTS)}, or [\"YYYY-MM-DD\", \"YYYY-MM-DD\"] (dates or "
                      f"ISO 8601 date-times with an offset)")


def custom(pair: list[str], zone: ZoneInfo) -> Period:
    if len(pair) != 2 or not all(isinstance(p, str) for p in pair):
        raise PeriodError("date_range as a list must hold two ISO 8601 dates or date-times, "
                          "such as [\"2024-01-01\", \"2024-01-31\"]")
    try:
        if all(len(p) == 10 for p in pair):
            return of_dates(date.fromisoformat(pair[0]), date.fromisoformat(pair[1]), zone)
        start, end = (datetime.fromisoformat(p) for p in pair)
    except ValueError as exc:
        raise PeriodError(f"date_range {pair!r}: {exc}; write ISO 8601 dates (2024-01-31) or "
                          f"date-times with an offset (2024-01-31T12:00:00+02:00)") from None
    if start.tzinfo is None or end.tzinfo is None:
        raise PeriodError(f"date_range {pair!r}: date-times need an offset such as +00:00 or Z")
    if end < start:
        raise PeriodError(f"date_range ends ({pair[1]}) before it starts ({pair[0]})")
    # a date-time range includes its last second, as Plausible's "T23:59:59" ranges do
    return Period(start.astimezone(UTC), end.astimezone(UTC) + timedelta(seconds=1), zone)


def compare(period: Period, mode: str, dates: list[str] | None = None) -> Period:
    """The comparison period: `previous_period` (as long, just before), `year_over_year`
    (the same dates a year earlier) or `custom` with `dates`."""
    if mode == "custom":
        if not dates:
            raise PeriodError("comparisons: mode 'custom' needs a date_range")
        return custom(dates, period.zone)
    if mode == "previous_period":
        if period.first is not None and period.last is not None:
            n = period.days
            return of_dates(period.first - timedelta(days=n), period.last - timedelta(days=n),
                            period.zone)
        length = period.end - period.start
        return Period(period.start - length, period.start, period.zone)
    if mode == "year_over_year":
        if period.first is not None and period.last is not None:
            return of_dates(_year_back(period.first), _year_back(period.last), period.zone)
        return Period(period.start - timedelta(days=365), period.end - timedelta(days=365),
                      period.zone)
    raise PeriodError(f"comparisons mode {mode!r} is not valid; use previous_period, "
                      f"year_over_year or custom")


def _year_back(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def offsets(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[tuple[datetime, int], ...]:
    """The zone's UTC offsets over [start, end): (instant, seconds) at each change."""

    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset()
        return int(delta.total_seconds()) if delta is not None else 0

    out = [(start, offset(start))]
    step = timedelta(days=1)  # zones change offset a few times a year at most
    at = start
    while at < end:
        nxt = min(at + step, end)
        if offset(nxt) != out[-1][1]:
            lo, hi = at, nxt  # bisect to the second of the change
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                lo, hi = (mid, hi) if offset(mid) == out[-1][1] else (lo, mid)
            out.append((hi.replace(microsecond=0), offset(hi)))
        at = nxt
    return tuple(out)


def granularity(period: Period) -> str:
    """What the plain `time` dimension means for a range (Plausible picks the same way)."""
    span = period.end - period.start
    if span <= timedelta(days=2):
        return "time:hour"
    if span <= timedelta(days=40):
        return "time:day"
    return "time:month"


def labels(period: Period, dimension: str) -> list[str]:
    """Every bucket label of a time dimension over the range, for `include.time_labels`."""
    zone = period.zone
    first = period.start.astimezone(zone)
    last = (period.end - timedelta(microseconds=1)).astimezone(zone)
    if dimension == "time:hour":
        out, at = [], period.start.replace(minute=0, second=0, microsecond=0)
        seen: set[str] = set()
        while at < period.end:
            label = at.astimezone(zone).strftime("%Y-%m-%d %H:00:00")
            if label not in seen:
                seen.add(label)
                out.append(label)
            at += timedelta(hours=1)
        return out
    day, end = first.date(), last.date()
    if dimension == "time:week":
        day -= timedelta(days=day.weekday())
        step = timedelta(days=7)
        out = []
        while day <= end:
            out.append(day.isoformat())
            day += step
        return out
    if dimension == "time:month":
        out, month = [], _month_start(day)
        while month <= end:
            out.append(month.isoformat())
            month = _month_start(month, -1)
        return out
    return [(day + timedelta(days=i)).isoformat() for i in range((end - day).days + 1)]


def bucket(local: datetime, dimension: str) -> str:
    """The label of a local time's bucket (the same rule the stores apply in SQL)."""
    if dimension == "time:hour":
        return local.strftime("%Y-%m-%d %H:00:00")
    day = local.date()
    if dimension == "time:week":
        return (day - timedelta(days=day.weekday())).isoformat()
    if dimension == "time:month":
        return day.replace(day=1).isoformat()
    return day.isoformat()
