"""The metrics document of a period as a user asks for it, and its two renderings: the daily
CSV and the full JSON export. The command line and the HTTP service both call
`metrics_document`, so they answer the same document for the same question."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from agent_analytics.json_text import dumps
from agent_analytics.settings import Settings

SCHEMA_PATH = Path(__file__).parent / "schema" / "analytics_export.schema.json"
CSV_COLUMNS = (
    "date", "dau", "wau", "mau", "sessions", "messages", "cost_usd",
    "cost_per_message", "avg_response_time_ms", "error_rate",
    "errors", "input_tokens", "output_tokens", "total_tokens", "llm_calls", "partial",
)


class ExportError(ValueError):
    """An export request we cannot answer (e.g. an unknown agent); one line for the user."""


class NoWarehouseError(LookupError):
    """There is no warehouse to read yet; one line for the user."""


@dataclass(frozen=True)
class MetricsQuery:
    """A period and an agent scope as a user gives them (command options, API parameters): at
    most one of `period`, `start`/`end`, `month`; None means the default (30d, every agent,
    the company time zone, now)."""

    period: str | None = None
    start: str | None = None
    end: str | None = None
    month: str | None = None
    agents: list[str] | None = None
    tz: str | None = None
    as_of: str | None = None


def metrics_document(settings: Settings, query: MetricsQuery, *, lock_timeout_s: float = 3600.0) -> dict:
    """The metrics document for `query`, read from the marts (`open_marts`). PeriodError
    for a bad period or time zone, ExportError for an unknown agent, NoWarehouseError before the
    first build, TimeoutError when a build held the warehouse for `lock_timeout_s`."""
    from agent_analytics.metrics import MetricsRequest, compute_metrics
    from agent_analytics.periods import check_tz, parse_as_of, parse_period

    tz = check_tz(query.tz or settings.company_tz)
    as_of = parse_as_of(query.as_of, tz)
    period = parse_period(query.period, query.start, query.end, query.month, as_of, tz)
    with open_marts(settings, lock_timeout_s=lock_timeout_s) as con:
        agents = check_agents(con, query.agents)
        return compute_metrics(con, MetricsRequest(period=period, agents=agents, as_of=as_of), settings)


@contextmanager
def open_marts(settings: Settings, *, lock_timeout_s: float = 3600.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the marts: the serving copy once a build has published one
    (no lock: it is never written in place, so a build never makes a reader wait), else the
    warehouse under its lock (with AGENT_ANALYTICS_ENGINE=spark, views over the Spark tables).
    NoWarehouseError when there is neither, TimeoutError when a build held the warehouse for
    `lock_timeout_s`."""
    from agent_analytics.serving import serving_database
    from agent_analytics.warehouse import duckdb_config, open_warehouse

    copy = serving_database(settings)
    if copy.exists():  # once published it is only ever replaced, never removed
        con = duckdb.connect(str(copy), read_only=True, config=duckdb_config(settings.home, settings.duckdb_memory))
        try:
            con.execute("set TimeZone = 'UTC'")
            yield con
        finally:
            con.close()
        return
    if not settings.warehouse_path.exists():
        raise NoWarehouseError(f"no warehouse at {settings.warehouse_path}: run 'agent-analytics build' first")
    if settings.engine == "spark":  # the marts are the Spark tables (agent_analytics/spark_marts.py)
        from agent_analytics.spark_marts import open_spark_marts

        with open_spark_marts(settings, lock_timeout_s=lock_timeout_s) as con:
            yield con
        return
    with open_warehouse(settings.warehouse_path, read_only=True, lock_timeout_s=lock_timeout_s,
                        memory_limit=settings.duckdb_memory) as con:
        yield con


def known_agents(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("select agent_id from dim_agents order by agent_id").fetchall()]


def check_agents(con: duckdb.DuckDBPyConnection, agent_ids: list[str] | None) -> list[str] | None:
    """The agent scope (None = all agents); unknown ids are an error naming the known ones."""
    if not agent_ids:
        return None
    known = set(known_agents(con))
    unknown = [a for a in agent_ids if a not in known]
    if unknown:
        listing = ", ".join(sorted(known)) or "none loaded yet"
        raise ExportError(f"unknown agent {unknown[0]!r} (known agents: {listing})")
    return sorted(set(agent_ids))


def to_csv(document: dict) -> str:
    """The daily rows of a metrics document as the export CSV (docs/metric-definitions.md):
    they partition the period, so each additive column sums to the period total; `partial`
    marks a day cut at the period's end."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in document["daily"]:
        writer.writerow(
            [
                row["date"], row["dau"], row["wau"], row["mau"], row["sessions"], row["messages"],
                _fixed(row["cost_usd"], 6), _fixed(row["cost_per_message"], 6),
                _fixed(row["avg_response_time_ms"], 1), _fixed(row["error_rate"], 6),
                row["errors"], row["input_tokens"], row["output_tokens"], row["total_tokens"], row["llm_calls"],
                "true" if row["partial"] else "false",
            ]
        )
    return out.getvalue()


def _fixed(value: float | None, places: int) -> str:
    """A number with `places` decimals; an empty cell for a value that cannot be computed."""
    return "" if value is None else f"{value:.{places}f}"


def to_json(document: dict) -> str:
    return dumps(document, indent=2) + "\n"


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())
