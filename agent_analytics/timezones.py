"""Which time zone names the warehouse can use.

A zone is used twice: Python (`zoneinfo`) turns local days into UTC windows, and DuckDB
(ICU, inside the metrics layer and the dbt models) buckets timestamps into local days. A name
only one of them knows fails halfway through a command or a build: `posixrules` and
`localtime` are files in the system's zoneinfo folder that ICU does not know, and ICU knows
abbreviations (`PST`, `IST`) and lower-case spellings that zoneinfo refuses. So a zone must be
known to both, spelled exactly as DuckDB lists it in `pg_timezone_names()`.
"""

from __future__ import annotations

from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


@lru_cache(maxsize=1)
def duckdb_zone_names() -> frozenset[str]:
    """The zone names of the installed DuckDB (ICU), read once per process."""
    import duckdb

    con = duckdb.connect()
    try:
        return frozenset(name for (name,) in con.execute("select name from pg_timezone_names()").fetchall())
    finally:
        con.close()


def is_known_zone(name: str) -> bool:
    """True when both zoneinfo and DuckDB know `name` (exact spelling)."""
    if not name or name not in duckdb_zone_names():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
