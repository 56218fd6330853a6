"""The periods of the dashboard pages and of the scheduled reports.

Dashboard pages (each a file with a stable name under reports/dashboard/):
  day            the last 24 hours            week    the last 7 x 24 hours
  month          the last 30 x 24 hours       current-month   this calendar month so far
  previous-month the last whole calendar month
Scheduled reports cover whole local days in the company time zone:
  daily    one day                  label 2026-11-26
  weekly   an ISO week, Monday-Sunday    label 2026-W48
  monthly  a calendar month              label 2026-11
`period_end` picks the day, week or month containing that date; by default the last one
that has ended (yesterday, last week, last month).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from agent_analytics.periods import Period, check_date, check_tz, local_date, local_midnight, parse_period

FREQUENCIES = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class Page:
    slug: str  # the file name without .html
    title: str
    period: Period


def _month_start(day: date) -> date:
    return day.replace(day=1)


def dashboard_pages(now: datetime, tz: str) -> list[Page]:
    today = local_date(now, tz)
    this_month = _month_start(today)
    last_month = _month_start(this_month - timedelta(days=1))
    month_so_far = Period("month", f"{this_month:%Y-%m} to date", local_midnight(this_month, tz), now, tz)
    return [
        Page("day", "Last 24 hours", parse_period("today", None, None, None, now, tz)),
        Page("week", "Last 7 days", parse_period("week", None, None, None, now, tz)),
        Page("month", "Last 30 days", parse_period("month", None, None, None, now, tz)),
        Page("current-month", f"{this_month:%B %Y} (to date)", month_so_far),
        Page("previous-month", f"{last_month:%B %Y}", parse_period(None, None, None, f"{last_month:%Y-%m}", now, tz)),
    ]


def default_period_end(frequency: str, today: date) -> date:
    """The last day of the latest period of this frequency that has fully ended."""
    if frequency == "daily":
        return today - timedelta(days=1)
    if frequency == "weekly":
        return today - timedelta(days=today.weekday() + 1)  # last Sunday
    if frequency == "monthly":
        return _month_start(today) - timedelta(days=1)
    raise ValueError(f"unknown frequency {frequency!r}: use {', '.join(FREQUENCIES)}")


def report_period(frequency: str, period_end: date, tz: str) -> tuple[str, Period]:
    """(label, period) of the report of `frequency` whose period contains `period_end`.

    `period_end` must be a supported date (periods.check_date); the week or month around it
    may reach a few days beyond, which the supported range leaves room for.
    """
    check_date(period_end, "--period-end")
    check_tz(tz)
    if frequency == "daily":
        first, last, label = period_end, period_end, period_end.isoformat()
    elif frequency == "weekly":
        first = period_end - timedelta(days=period_end.weekday())
        last = first + timedelta(days=6)
        year, week, _ = first.isocalendar()
        label = f"{year}-W{week:02d}"
    elif frequency == "monthly":
        first = _month_start(period_end)
        last = _month_start(first + timedelta(days=32)) - timedelta(days=1)
        label = f"{first:%Y-%m}"
    else:
        raise ValueError(f"unknown frequency {frequency!r}: use {', '.join(FREQUENCIES)}")
    return label, Period("custom", label, local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz), tz)
