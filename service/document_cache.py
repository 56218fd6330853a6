"""The metrics documents this server computed, answered again while the data is unchanged.

A document of 30 days at 10M messages takes seconds to count (docs/webapp.md), and the same
questions come again and again: everyone opening the dashboard in the morning asks for the
default view. So `serve` keeps the JSON of the documents it computed (at most MAX_BYTES in all,
the least recently used go first) and answers the same question from them, while both hold:

- the data is the same: the serving copy file (the publication writes the spare of two files
  and renames it into place, so a new publication changes its identity: inode, size and
  modification time) and the goals file (goals and budgets; its bytes, by SHA-256). Before the
  first publication nothing is kept: the warehouse is written in place by every build.
- it is at most AGENT_ANALYTICS_DOCUMENT_CACHE_S old (default 300 s, the refresh's cadence).
  A question counted up to now (no `as_of`) is answered by a document counted up to the time
  it was computed, which its `as_of` and `generated_at` say; the same local days only (a new
  day is a new question). A question with an `as_of` is answered only by a document of that
  same `as_of`.

0 turns it off. The key is the question: its period as resolved (kind, label, local days), the
agents in order, the time zone and the as_of asked; an invalid question is never kept (it is
answered 400 by the computation). Only JSON answers are kept (the CSV export is counted each
time).

After each new publication the server counts the dashboard's first view (DEFAULT_VIEW: 30
days, every agent, the company zone, as of now) into the cache by itself
(`keep_default_view_warm`, service/read_routes.py), so the first person opening the page after
a build does not wait for it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path

from agent_analytics.exports import MetricsQuery
from agent_analytics.periods import PeriodError, check_tz, parse_as_of, parse_period
from agent_analytics.serving import serving_database
from agent_analytics.settings import Settings

MAX_BYTES = 64 * 1024 * 1024  # a 30-day document at 10M messages is about 270 kB of JSON
DEFAULT_VIEW = MetricsQuery(period="30d")  # the dashboard's first view


def _identity(path: Path) -> tuple:
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return ("missing",)
    except OSError as exc:  # unreadable: the computation reports it (a goals problem, a 503)
        return ("unreadable", exc.errno)
    return found.st_ino, found.st_size, found.st_mtime_ns


def _content(path: Path) -> tuple:
    """The goals file by its bytes: an edit within the file system's time granularity that
    keeps the size is still a new file."""
    try:
        return ("sha256", hashlib.sha256(path.read_bytes()).hexdigest())
    except FileNotFoundError:
        return ("missing",)
    except OSError as exc:
        return ("unreadable", exc.errno)


def data_version(settings: Settings) -> tuple | None:
    """What a document was read from: the serving copy and the goals file; None before the
    first publication (nothing is kept then)."""
    copy = _identity(serving_database(settings))
    if copy == ("missing",):
        return None
    return copy, _content(settings.goals_path)


class DocumentCache:
    def __init__(self, max_age_s: float, max_bytes: int = MAX_BYTES) -> None:
        self.max_age_s = max_age_s
        self.max_bytes = max_bytes
        self._kept: OrderedDict[tuple, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
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
        # the period as resolved: "30d" and no period (its default) are one question
        return (version, period.kind, period.label, period.start_date, period.end_date, tuple(query.agents or ()), tz,
                query.as_of)

    def get(self, key: tuple | None) -> bytes | None:
        """The JSON kept for `key`, if it is not older than max_age_s."""
        if key is None:
            return None
        with self._lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            if time.monotonic() - kept[0] > self.max_age_s:
                self._drop(key)
                return None
            self._kept.move_to_end(key)
            return kept[1]

    def put(self, key: tuple | None, answer: bytes) -> None:
        if key is None or len(answer) > self.max_bytes // 4:  # a very long period is not worth a quarter
            return
        with self._lock:
            if key in self._kept:
                self._drop(key)
            self._kept[key] = (time.monotonic(), answer)
            self._bytes += len(answer)
            now = time.monotonic()
            for old in [k for k, (at, _) in self._kept.items() if now - at > self.max_age_s]:
                self._drop(old)
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._kept)))

    def _drop(self, key: tuple) -> None:
        self._bytes -= len(self._kept.pop(key)[1])
