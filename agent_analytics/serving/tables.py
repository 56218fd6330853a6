"""What a publication holds: the marts with their dbt descriptions, the `_published` rows, and
the day fingerprints that let the next publication rewrite only the days that changed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import yaml

from agent_analytics.settings import Settings

MARTS_DIR = Path(__file__).resolve().parents[2] / "dbt_project" / "models" / "marts"
PUBLISHED = "_published"
PUBLISHED_DAYS = "_published_days"
PUBLISHED_COLUMNS = {
    "build_id": ("varchar", "The build that produced these tables: the Dagster run id, or a random id outside Dagster."),
    "dbt_invocation_id": ("varchar", "The dbt invocation of that build (dbt_target/run_results.json), when known."),
    "published_at": ("timestamp", "When this copy was published (UTC): the \"data as of\" time."),
    "table_name": ("varchar", "A table of this copy."),
    "row_count": ("bigint", "Its rows at publication: a reader sees the same count."),
    "model_version": ("varchar", "The version of the dbt project and settings that built the tables (a hash)."),
}
PUBLISHED_DAYS_COLUMNS = {
    "table_name": ("varchar", "A row-level table published by day."),
    "day": ("date", "A day of it (its day column)."),
    "row_count": ("bigint", "The day's rows."),
    "max_loaded_at": ("timestamp", "The newest load time among the day's rows."),
    "cost_usd": ("decimal(38,10)", "The day's cost (tables with costs; a re-pricing changes it, not the load times)."),
}

# The row-level facts, published by day: mart -> (its day column, its load-time column). A
# refresh adds or rewrites the rows of a few days; every write of a row (a new message, a
# newer revision of one, a rebuilt session) carries the load time of the batch it comes from,
# so a day whose row count and newest load time are unchanged holds the same rows as before,
# except for a changed company price, which rewrites stored rows with their load times and
# other costs: the facts with costs add the day's cost to the fingerprint.
# The other marts are small (days, agents, minutes) and are rewritten whole.
BY_DAY = {
    "fct_messages": ("message_date", "loaded_at", "cost_usd"),
    "fct_llm_calls": ("message_date", "loaded_at", "cost_usd"),
    "fct_tool_calls": ("message_date", "loaded_at", None),
    "fct_sessions": ("session_date", "max_loaded_at", None),
}

DayFingerprint = tuple[str, date, int, datetime, Decimal | None]  # table, day, rows, newest load time, cost


@dataclass(frozen=True)
class Mart:
    """A mart or dimension with its dbt YAML descriptions."""

    name: str
    description: str
    columns: dict[str, str]  # column name -> description
    types: dict[str, str] = field(default_factory=dict)  # column name -> the type its dbt contract declares


@dataclass(frozen=True)
class Publication:
    """What one publication holds: a build id, a time, the row count of each table, the model
    version and the day fingerprints of the tables published by day."""

    build_id: str
    dbt_invocation_id: str | None
    published_at: datetime  # UTC, naive as the marts store times
    row_counts: dict[str, int]
    model_version: str | None = None
    days: frozenset[DayFingerprint] = frozenset()


def marts(models_dir: Path = MARTS_DIR) -> list[Mart]:
    """The models of `models_dir` (one per .sql file) with their descriptions and declared
    column types from its YAML."""
    documented = {}
    for yml in sorted(models_dir.glob("*.yml")):
        for model in (yaml.safe_load(yml.read_text()) or {}).get("models", []):
            documented[model["name"]] = model
    found = []
    for sql in sorted(models_dir.glob("*.sql")):
        model = documented.get(sql.stem, {})
        columns = {c["name"]: " ".join(c.get("description", "").split()) for c in model.get("columns", [])}
        types = {c["name"]: c.get("data_type", "varchar") for c in model.get("columns", [])}
        found.append(Mart(sql.stem, " ".join(model.get("description", "").split()), columns, types))
    return found


def dbt_invocation_id(settings: Settings) -> str | None:
    """The invocation id of the last dbt run of this home (the dbt asset's target folder)."""
    try:
        results = json.loads((settings.dbt_target_dir / "run_results.json").read_text())
    except (OSError, ValueError):
        return None
    return results.get("metadata", {}).get("invocation_id")


def day_fingerprints(con: duckdb.DuckDBPyConnection, tables: list[Mart], schema: str = "main") -> frozenset[DayFingerprint]:
    """Rows and newest load time per day of the tables of `tables` published by day."""
    selects = [
        f"select {text(mart.name)}, {day}, count(*), max({loaded}), "
        f"cast({f'sum({cost})' if cost else 'null'} as decimal(38, 10)) "
        f'from {schema}."{mart.name}" group by all'
        for mart in tables if mart.name in BY_DAY
        for day, loaded, cost in [BY_DAY[mart.name]]
    ]
    if not selects:
        return frozenset()
    return frozenset(con.execute(" union all ".join(selects)).fetchall())


def changed_days(before: frozenset[DayFingerprint] | None, after: frozenset[DayFingerprint], table: str) -> list[date] | None:
    """The days of `table` whose fingerprint differs between two states (added, removed or
    changed), sorted; None when there is no earlier state (everything is new)."""
    if before is None:
        return None
    return sorted({day for name, day, *_ in before ^ after if name == table})


def days_of(days: frozenset[DayFingerprint], table: str) -> list[date]:
    return sorted(day for name, day, *_ in days if name == table)


def published_rows(publication: Publication) -> str:
    """A select of the `_published` rows (the values are ours, quoted as SQL literals)."""
    return _select_rows(PUBLISHED_COLUMNS, [
        (text(publication.build_id), text(publication.dbt_invocation_id), text(publication.published_at.isoformat(sep=" ")),
         text(table), str(count), text(publication.model_version))
        for table, count in publication.row_counts.items()
    ])


def published_days_rows(publication: Publication) -> str:
    """A select of the `_published_days` rows."""
    return _select_rows(PUBLISHED_DAYS_COLUMNS, [
        (text(table), text(day.isoformat()), str(rows), text(loaded.isoformat(sep=" ") if loaded else None),
         "null" if cost is None else str(cost))
        for table, day, rows, loaded, cost in sorted(publication.days, key=lambda d: (d[0], d[1]))
    ])


def read_published_days(con: duckdb.DuckDBPyConnection, relation: str) -> frozenset[DayFingerprint]:
    return frozenset(con.execute(f"select table_name, day, row_count, max_loaded_at, cost_usd from {relation}").fetchall())


def _select_rows(columns: dict[str, tuple[str, str]], rows: list[tuple[str, ...]]) -> str:
    casts = ", ".join(f"cast({column} as {data_type}) as {column}" for column, (data_type, _) in columns.items())
    if not rows:  # the columns, no row
        return f"select {casts} from (select {', '.join(f'null as {c}' for c in columns)}) where false"
    values = ", ".join(f"({', '.join(row)})" for row in rows)
    return f"select {casts} from (values {values}) as t({', '.join(columns)})"


def text(value: str | None) -> str:
    """A SQL string literal (or null)."""
    return "null" if value is None else "'" + value.replace("'", "''") + "'"
