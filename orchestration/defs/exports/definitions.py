"""The daily CSV and full JSON exports, rewritten at stable paths after every build.

Both cover the 30 company days ending today (AGENT_ANALYTICS_TZ). Files are written to a
temporary name and renamed, so a reader never sees a half-written export.
"""


from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg

from agent_analytics.exports import to_csv, to_json
from agent_analytics.files import write_atomically
from agent_analytics.metrics import MetricsRequest, compute_metrics
from agent_analytics.periods import parse_as_of, parse_period
from agent_analytics.settings import load_settings
from agent_analytics.warehouse import open_warehouse
from orchestration.pools import WAREHOUSE_POOL

MART_DEPS = [
    dg.AssetKey([name])
    for name in (
        "fct_daily_activity", "fct_agent_daily", "fct_messages", "fct_sessions", "fct_llm_calls",
        "fct_daily_cost_by_provider", "fct_component_uptime_daily", "fct_downtime_incidents",
        "fct_queue_depth_daily", "fct_tool_calls_daily", "fct_tool_calls", "fct_health_checks",
        "fct_queue_samples", "dim_agents",
    )
]
DAILY_CSV = "daily.csv"
FULL_JSON = "analytics.json"
EXPORT_PERIOD = "30d"


def _document() -> tuple:
    """The metrics document of the 30 whole local days ending today (company time zone)."""
    settings = load_settings()
    today = datetime.now(ZoneInfo(settings.company_tz)).date()
    as_of = parse_as_of(today.isoformat(), settings.company_tz)
    period = parse_period(EXPORT_PERIOD, None, None, None, as_of, settings.company_tz)
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        document = compute_metrics(con, MetricsRequest(period=period, agents=None, as_of=as_of), settings)
    return settings, document


@dg.multi_asset(
    name="exports",
    specs=[
        dg.AssetSpec(
            "daily_csv_export", group_name="exports", deps=MART_DEPS, kinds={"csv"},
            description="exports/daily.csv: one row per day of the last 30 days (columns: docs/metric-definitions.md).",
        ),
        dg.AssetSpec(
            "full_json_export", group_name="exports", deps=MART_DEPS, kinds={"json"},
            description="exports/analytics.json: every metric of the last 30 days (schema 2.1).",
        ),
    ],
    pool=WAREHOUSE_POOL,
)
def exports():
    """Both files from one metrics document, so they can never disagree."""
    settings, document = _document()
    csv_path, json_path = settings.exports_dir / DAILY_CSV, settings.exports_dir / FULL_JSON
    write_atomically(csv_path, to_csv(document))
    write_atomically(json_path, to_json(document))
    period = document["period"]
    yield dg.MaterializeResult(
        asset_key="daily_csv_export",
        metadata={"path": dg.MetadataValue.path(str(csv_path)), "rows": len(document["daily"]),
                  "start": period["start_date"], "end": period["end_date"]},
    )
    yield dg.MaterializeResult(
        asset_key="full_json_export",
        metadata={"path": dg.MetadataValue.path(str(json_path)), "messages": document["performance"]["messages"]},
    )


defs = dg.Definitions(assets=[exports])
