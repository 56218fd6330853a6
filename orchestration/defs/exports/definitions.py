"""The daily CSV and full JSON exports, rewritten at stable paths after every build.

Both cover the 30 company days ending today (AGENT_ANALYTICS_TZ). Files are written to a
temporary name and renamed, so a reader never sees a half-written export.
"""


import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg

from agent_analytics.exports import daily_rows, full_export, to_csv, to_json
from agent_analytics.periods import parse_period
from agent_analytics.settings import load_settings
from ingestion.warehouse import open_warehouse
from orchestration.pools import WAREHOUSE_POOL

MART_DEPS = [
    dg.AssetKey([name])
    for name in (
        "fct_daily_activity", "fct_agent_daily", "fct_messages", "fct_sessions", "fct_llm_calls",
        "fct_daily_cost_by_provider", "fct_component_uptime_daily", "fct_downtime_incidents",
        "fct_queue_depth_daily", "fct_tool_calls_daily", "dim_agents",
    )
]
DAILY_CSV = "daily.csv"
FULL_JSON = "analytics.json"
EXPORT_PERIOD = "30d"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _period():
    settings = load_settings()
    today = datetime.now(ZoneInfo(settings.company_tz)).date()
    return settings, parse_period(EXPORT_PERIOD, None, None, today)


@dg.asset(
    group_name="exports",
    deps=MART_DEPS,
    pool=WAREHOUSE_POOL,
    kinds={"csv"},
    description="exports/daily.csv: one row per day of the last 30 days (METRICS.md 'Exports' columns).",
)
def daily_csv_export() -> dg.MaterializeResult:
    settings, period = _period()
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        rows = daily_rows(con, period)
    path = settings.exports_dir / DAILY_CSV
    write_atomically(path, to_csv(rows))
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "rows": len(rows), "start": str(period.start), "end": str(period.end)}
    )


@dg.asset(
    group_name="exports",
    deps=MART_DEPS,
    pool=WAREHOUSE_POOL,
    kinds={"json"},
    description="exports/analytics.json: every metric of the last 30 days, breakdowns, series and health.",
)
def full_json_export() -> dg.MaterializeResult:
    settings, period = _period()
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        export = full_export(con, period, None, settings.company_tz)
    path = settings.exports_dir / FULL_JSON
    write_atomically(path, to_json(export))
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "messages": export["summary"]["messages"]}
    )


defs = dg.Definitions(assets=[daily_csv_export, full_json_export])
