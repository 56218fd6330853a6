"""Reporting periods: exact windows `[start, end)` in UTC with the local days they cover.

- `today`, `week`, `month`, `Nd`: rolling, the last N x 24 hours ending at `as_of`;
- `--start A --end B`: custom, from local midnight of A to local midnight after B;
- `--month YYYY-MM`: a calendar month in local time.
The previous period has the same length and ends where the period starts.
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
    start: datetime  # UTC, included
    end: datetime  # UTC, excluded
    tz: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @property
    def start_date(self) -> date:
        return self.start.astimezone(self.zone).date()

    @property
    def end_date(self) -> date:
        return (self.end - timedelta(microseconds=1)).astimezone(self.zone).date()

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86400

    def local_dates(self) -> list[date]:
        count = (self.end_date - self.start_date).days + 1
        return [self.start_date + timedelta(days=i) for i in range(count)]

    def previous(self) -> "Period":
        length = self.end - self.start
        return Period(self.kind, f"previous {self.label}", self.start - length, self.start, self.tz)

    def describe(self) -> dict:
        return {
            "label": self.label,
            "kind": self.kind,
            "start": iso(self.start),
            "end": iso(self.end),
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "days": round(self.days, 6),
        }


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
        return Period("custom", f"{first}..{last}", local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz), tz)
    if month:
        match = re.fullmatch(r"(\d{4})-(\d{2})", month)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise PeriodError(f"--month {month!r} is not a month in YYYY-MM form")
        year = int(match.group(1))
        if not FIRST_DATE.year <= year <= LAST_DATE.year:  # year 0 is no date at all
            raise PeriodError(f"--month {month!r} is outside the supported dates {FIRST_DATE}..{LAST_DATE}")
        first = date(year, int(match.group(2)), 1)
        following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
        return Period("month", month, local_midnight(first, tz), local_midnight(following, tz), tz)
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
    return Period("rolling", word, as_of - timedelta(days=days), as_of, tz)
