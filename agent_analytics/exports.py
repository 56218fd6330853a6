"""The daily CSV and the full JSON export: two renderings of the metrics document."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb

from agent_analytics.json_text import dumps

SCHEMA_PATH = Path(__file__).parent / "schema" / "analytics_export.schema.json"
CSV_COLUMNS = (
    "date", "dau", "wau", "mau", "sessions", "messages", "cost_usd",
    "cost_per_message", "avg_response_time_ms", "error_rate",
    "errors", "input_tokens", "output_tokens", "total_tokens", "llm_calls", "partial",
)


class ExportError(ValueError):
    """An export request we cannot answer (e.g. an unknown agent); one line for the user."""


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
