"""Periods: runs of whole local days, as exact windows `[start, end)` in UTC.

- `today`, `week`, `month`, `Nd`: rolling, the N local days ending with the day of `as_of`;
- `--start A --end B`: custom, the days A..B;
- `--month YYYY-MM`: a calendar month in local time;
- the dashboard pages and the scheduled reports' days, ISO weeks and months (below).
A day not over by `as_of` is counted up to `as_of`: the window ends at the earlier of `as_of`
and `full_end` (the local midnight after the last day), and the period is *partial*. The
previous period is the same number of days (a month: the previous month) just before, cut at
the same point when the period is partial. So the daily rows of a period partition it.
Every date a user gives (--as-of, --start, --end, --month, a report's --period-end) lies in
FIRST_DATE..LAST_DATE, so every date derived from it (the previous period, up to 2 x 3660
days earlier; the 29-day MAU lookback; the day after) stays inside Python's and DuckDB's
calendars with centuries to spare.
See docs/metric-definitions.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from agent_analytics.timezones import is_known_zone

FIRST_DATE = date(1970, 1, 1)
LAST_DATE = date(2999, 12, 31)
NAMED_DAYS = {"today": 1, "week": 7, "month": 30}
MAX_DAYS = 3660
DEFAULT_PERIOD = "30d"


class PeriodError(ValueError):
    """A period argument we cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Period:
    kind: str  # rolling | custom | month
    label: str
    start: datetime  # UTC, included: the local midnight of the first day
    end: datetime  # UTC, excluded: the earlier of as_of and full_end
    tz: str
    full_end: datetime  # UTC: the local midnight after the last day

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def partial(self) -> bool:
        return self.end < self.full_end

    @property
    def start_date(self) -> date:
        return self.start.astimezone(self.zone).date()

    @property
    def end_date(self) -> date:
        """The local day of the window's last instant."""
        return (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()

    @property
    def last_date(self) -> date:
        """The period's last day, whether or not the window reaches its end."""
        return (self.full_end - timedelta(microseconds=1)).astimezone(self.zone).date()

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def previous(self) -> Period:
        """The same number of days (a month: the calendar month) just before, cut at the same
        time into its corresponding day when this period is partial."""
        if self.kind == "month":
            last = self.start_date - timedelta(days=1)
            first = last.replace(day=1)
            day = self.end_date.day
            corresponding = last.replace(day=day) if day <= last.day else None
        else:
            count = (self.last_date - self.start_date).days + 1
            first, last = self.start_date - timedelta(days=count), self.start_date - timedelta(days=1)
            corresponding = self.end_date - timedelta(days=count)
        full_end = local_midnight(last + timedelta(days=1), self.tz)
        end = full_end
        if self.partial and corresponding is not None:
            into = self.end - local_midnight(self.end_date, self.tz)
            end = min(local_midnight(corresponding, self.tz) + into, full_end)
        return Period(self.kind, f"previous {self.label}", local_midnight(first, self.tz), end, self.tz, full_end)

    def describe(self) -> dict:
        return {
            "label": self.label,
            "kind": self.kind,
            "start": iso(self.start),
            "end": iso(self.end),
            "full_end": iso(self.full_end),
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "days": self.days,
            "partial": self.partial,
        }


def days_period(kind: str, label: str, first: date, last: date, tz: str, as_of: datetime | None = None) -> Period:
    """The local days first..last, cut at `as_of` when it falls before their end."""
    start, full_end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    if as_of is not None and as_of <= start:
        raise PeriodError(f"the period {label} starts after the time it is computed as of ({iso(as_of)})")
    end = full_end if as_of is None else min(as_of, full_end)
    return Period(kind, label, start, end, tz, full_end)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def check_tz(tz: str) -> str:
    if not is_known_zone(tz):
        raise PeriodError(f"unknown time zone {tz!r} (use an IANA name such as UTC or Europe/Berlin)")
    return tz


def check_date(day: date, what: str, text: str | None = None) -> date:
    """`day` itself, or a PeriodError when it lies outside the supported dates."""
    if not FIRST_DATE <= day <= LAST_DATE:
        raise PeriodError(f"{what} {text or day.isoformat()!r} is outside the supported dates {FIRST_DATE}..{LAST_DATE}")
    return day


def local_date(moment: datetime, tz: str) -> date:
    """The local calendar day of instant `moment` in time zone `tz`."""
    return moment.astimezone(ZoneInfo(tz)).date()


def local_midnight(day: date, tz: str) -> datetime:
    """The UTC instant at which local day `day` starts."""
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).astimezone(timezone.utc)


def parse_as_of(text: str | None, tz: str, now: datetime | None = None) -> datetime:
    """`as_of` from a date (the end of that local day), an ISO instant, or now."""
    if not text:
        return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return local_midnight(_parse_date(text, "--as-of") + timedelta(days=1), tz)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PeriodError(f"--as-of {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time") from None
    # The date as written, before any offset moves it: a supported date converts without overflow.
    check_date(moment.date(), "--as-of", text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(tz))
    return moment.astimezone(timezone.utc)


def _parse_date(text: str, what: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{what} {text!r} is not a date in YYYY-MM-DD form") from None
    return check_date(day, what, text)


def parse_period(
    period: str | None,
    start: str | None,
    end: str | None,
    month: str | None,
    as_of: datetime,
    tz: str,
) -> Period:
    """The period named by exactly one of --period, --start/--end, --month (default 30d)."""
    check_tz(tz)
    given = [name for name, value in (("--period", period), ("--start/--end", start or end), ("--month", month)) if value]
    if len(given) > 1:
        raise PeriodError(f"give only one of {', '.join(given)}")
    if start or end:
        if not (start and end):
            raise PeriodError("--start and --end go together: give both dates")
        first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
        if last < first:
            raise PeriodError(f"--end {last} is before --start {first}")
        if (last - first).days + 1 > MAX_DAYS:
            raise PeriodError(f"a period can span at most {MAX_DAYS} days")
        return days_period("custom", f"{first}..{last}", first, last, tz, as_of)
    if month:
        match = re.fullmatch(r"(\d{4})-(\d{2})", month)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise PeriodError(f"--month {month!r} is not a month in YYYY-MM form")
        year = int(match.group(1))
        if not FIRST_DATE.year <= year <= LAST_DATE.year:  # year 0 is no date at all
            raise PeriodError(f"--month {month!r} is outside the supported dates {FIRST_DATE}..{LAST_DATE}")
        first = date(year, int(match.group(2)), 1)
        return days_period("month", month, first, _month_end(first), tz, as_of)
    word = (period or DEFAULT_PERIOD).strip().lower()
    if word in NAMED_DAYS:
        days = NAMED_DAYS[word]
    else:
        match = re.fullmatch(r"(\d+)d", word)
        if not match:
            raise PeriodError(f"unknown period {period!r}: use today, week, month or Nd (e.g. 30d)")
        days = int(match.group(1))
        if not 1 <= days <= MAX_DAYS:
            raise PeriodError(f"period {period!r} must be between 1d and {MAX_DAYS}d")
    last = local_date(as_of - timedelta(microseconds=1), tz)
    return days_period("rolling", word, last - timedelta(days=days - 1), last, tz, as_of)


def _month_end(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1) - timedelta(days=1)


# ------------------------------------------------------------------ dashboard pages and reports
# Dashboard pages (each a file with a stable name under reports/dashboard/):
#   day     today so far                 week    the last 7 days, today included
#   month   the last 30 days             current-month   this calendar month so far
#   previous-month  the last whole calendar month
# Scheduled reports cover whole local days in the company time zone:
#   daily    one day                         label 2026-11-26
#   weekly   an ISO week, Monday-Sunday      label 2026-W48
#   monthly  a calendar month                label 2026-11
# `period_end` picks the day, week or month containing that date; by default the last one
# that has ended (yesterday, last week, last month).

FREQUENCIES = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class Page:
    slug: str  # the file name without .html
    title: str
    period: Period


def dashboard_pages(now: datetime, tz: str) -> list[Page]:
    # the month of now's last instant, as rolling periods take their last day: at local midnight
    # of the 1st, "this month so far" is the month that just ended
    this_month = local_date(now - timedelta(microseconds=1), tz).replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    return [
        Page("day", "Today", parse_period("today", None, None, None, now, tz)),
        Page("week", "Last 7 days", parse_period("week", None, None, None, now, tz)),
        Page("month", "Last 30 days", parse_period("month", None, None, None, now, tz)),
        Page("current-month", f"{this_month:%B %Y} (to date)", parse_period(None, None, None, f"{this_month:%Y-%m}", now, tz)),
        Page("previous-month", f"{last_month:%B %Y}", parse_period(None, None, None, f"{last_month:%Y-%m}", now, tz)),
    ]


def default_period_end(frequency: str, today: date) -> date:
    """The last day of the latest period of this frequency that has fully ended."""
    if frequency == "daily":
        return today - timedelta(days=1)
    if frequency == "weekly":
        return today - timedelta(days=today.weekday() + 1)  # last Sunday
    if frequency == "monthly":
        return today.replace(day=1) - timedelta(days=1)
    raise ValueError(f"unknown frequency {frequency!r}: use {', '.join(FREQUENCIES)}")


def report_period(frequency: str, period_end: date, tz: str, as_of: datetime | None = None) -> tuple[str, Period]:
    """(label, period) of the report of `frequency` whose period contains `period_end`, cut at
    `as_of` when given (a report of a period not over yet). The previous period is the day, ISO
    week or calendar month before.

    `period_end` must be a supported date (check_date); the week or month around it may reach
    a few days beyond, which the supported range leaves room for.
    """
    check_date(period_end, "--period-end")
    check_tz(tz)
    if frequency == "daily":
        first, last, label, kind = period_end, period_end, period_end.isoformat(), "custom"
    elif frequency == "weekly":
        first = period_end - timedelta(days=period_end.weekday())
        last = first + timedelta(days=6)
        year, week, _ = first.isocalendar()
        label, kind = f"{year}-W{week:02d}", "custom"
    elif frequency == "monthly":
        first = period_end.replace(day=1)
        last, label, kind = _month_end(first), f"{first:%Y-%m}", "month"
    else:
        raise ValueError(f"unknown frequency {frequency!r}: use {', '.join(FREQUENCIES)}")
    return label, days_period(kind, label, first, last, tz, as_of)


@dataclass(frozen=True, kw_only=True)
class PeriodQuery:
    """A period as a user gives it (command options, API fields): at most one of `period`,
    `start`/`end`, `month`, the time zone and the time it is counted up to; None: the default."""

    period: str | None = None
    start: str | None = None
    end: str | None = None
    month: str | None = None
    tz: str | None = None
    as_of: str | None = None

    def resolve(self, company_tz: str, default_period: str) -> tuple[Period, datetime]:
        """The period (`default_period` when none is given) and the as-of time; PeriodError for
        a bad one or a bad time zone."""
        tz = check_tz(self.tz or company_tz)
        as_of = parse_as_of(self.as_of, tz)
        given = self.period or self.start or self.end or self.month
        return parse_period(self.period if given else default_period, self.start, self.end, self.month, as_of, tz), as_of
