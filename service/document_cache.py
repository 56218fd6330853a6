"""The metrics documents this server computed, answered again while the data is unchanged.

A document of 30 days at 10M messages takes seconds to count (docs/webapp.md), and the same
questions come again and again: everyone opening the dashboard in the morning asks for the
default view. So `serve` keeps the last CACHE_ENTRIES documents it computed and answers the
same question from them, while both hold:

- the data is the same: the serving copy (replaced whole by each publication, never written in
  place) and the goals file (goals and budgets) are the files they were, by inode, size and
  modification time. Before the first publication nothing is kept: the warehouse is written in
  place by every build.
- it is at most AGENT_ANALYTICS_DOCUMENT_CACHE_S old (default 300 s, the refresh's cadence).
  A question counted up to now (no `as_of`) is answered by a document counted up to the time
  it was computed, which its `as_of` and `generated_at` say; the same local days only (a new
  day is a new question). A question with an `as_of` is answered only by a document of that
  same `as_of`.

0 turns it off. The key is the question as asked (period fields, agents in order, time zone,
as_of) with the local days it resolved to; an invalid question is never kept (it is answered
400 by the computation).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from agent_analytics.exports import MetricsQuery
from agent_analytics.periods import PeriodError, check_tz, parse_as_of, parse_period
from agent_analytics.serving import serving_database
from agent_analytics.settings import Settings

CACHE_ENTRIES = 32


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_size, found.st_mtime_ns


def data_version(settings: Settings) -> tuple | None:
    """What a document was read from: the serving copy and the goals file; None before the
    first publication (nothing is kept then)."""
    copy = _identity(serving_database(settings))
    if copy is None:
        return None
    return copy, _identity(settings.goals_path)


class DocumentCache:
    def __init__(self, max_age_s: float, entries: int = CACHE_ENTRIES) -> None:
        self.max_age_s = max_age_s
        self.entries = entries
        self._kept: OrderedDict[tuple, tuple[float, dict]] = OrderedDict()
        self._lock = threading.Lock()

    def key(self, settings: Settings, query: MetricsQuery) -> tuple | None:
        """The key of `query` on the data served now; None when nothing may be kept (off, no
        serving copy yet, or a question the computation will refuse)."""
        if self.max_age_s <= 0:
            return None
        version = data_version(settings)
        if version is None:
            return None
        try:
            tz = check_tz(query.tz or settings.company_tz)
            period = parse_period(query.period, query.start, query.end, query.month, parse_as_of(query.as_of, tz), tz)
        except PeriodError:
            return None
        return (version, query.period, query.start, query.end, query.month, tuple(query.agents or ()), tz, query.as_of,
                period.start_date, period.end_date)

    def get(self, key: tuple | None) -> dict | None:
        if key is None:
            return None
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            if time.monotonic() - kept[0] > self.max_age_s:
                del self._kept[key]
                return None
            self._kept.move_to_end(key)
            return kept[1]

    def put(self, key: tuple | None, document: dict) -> None:
        if key is None:
            return
        with self._lock:
            self._kept[key] = (time.monotonic(), document)
            self._kept.move_to_end(key)
            while len(self._kept) > self.entries:
                self._kept.popitem(last=False)
