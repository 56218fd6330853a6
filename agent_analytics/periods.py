"""Reporting periods: `today`, `week`, `month`, `Nd`, or a custom start..end (both included).

Periods here are whole days in the company time zone ending with the as-of day:
`today` is the as-of day, `week` the 7 days ending with it, `month` the 30 days, `Nd` N days.
Every period has a previous period of the same length right before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

NAMED_DAYS = {"today": 1, "week": 7, "month": 30}
MAX_DAYS = 3660


class PeriodError(ValueError):
    """A period argument we cannot use; the message is one line for the user."""


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    label: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end, f"previous {self.label}")

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


def _parse_date(text: str, what: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{what} {text!r} is not a date in YYYY-MM-DD form") from None


def parse_period(period: str | None, start: str | None, end: str | None, today: date) -> Period:
    """The period named by `--period` or by `--start/--end` (not both), ending on `today` if relative."""
    if start or end:
        if period:
            raise PeriodError("give either --period or --start/--end, not both")
        if not (start and end):
            raise PeriodError("--start and --end go together: give both dates")
        first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
        if last < first:
            raise PeriodError(f"--end {last} is before --start {first}")
        if (last - first).days + 1 > MAX_DAYS:
            raise PeriodError(f"a period can span at most {MAX_DAYS} days")
        return Period(first, last, f"{first} to {last}")
    word = (period or "30d").strip().lower()
    if word in NAMED_DAYS:
        days = NAMED_DAYS[word]
    else:
        match = re.fullmatch(r"(\d+)d", word)
        if not match:
            raise PeriodError(f"unknown period {period!r}: use today, week, month or Nd (e.g. 30d)")
        days = int(match.group(1))
        if not 1 <= days <= MAX_DAYS:
            raise PeriodError(f"period {period!r} must be between 1d and {MAX_DAYS}d")
    return Period(today - timedelta(days=days - 1), today, word)
