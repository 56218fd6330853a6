"""The daily CSV and full JSON exports, rewritten at stable paths after every build.

Both cover the 30 company days ending today (AGENT_ANALYTICS_TZ), today counted up to the
time of the export and marked partial. Files are written to a
temporary name and renamed, so a reader never sees a half-written export.
"""


from collections.abc import Sequence
from datetime import datetime, timezone

import dagster as dg

from agent_analytics.exports import to_csv, to_json
from agent_analytics.files import write_atomically
from agent_analytics.metrics import MetricsRequest, compute_metrics
from agent_analytics.periods import parse_period
from agent_analytics.settings import Settings
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import AnalyticsSettings, Warehouse

EXPORTS_GROUP = "exports"
DAILY_CSV = "daily.csv"
FULL_JSON = "analytics.json"
EXPORT_PERIOD = "30d"


def _document(settings: Settings, warehouse: Warehouse) -> dict:
    """The metrics document of the 30 local days ending today (company time zone), up to now."""
    as_of = datetime.now(timezone.utc)
    period = parse_period(EXPORT_PERIOD, None, None, None, as_of, settings.company_tz)
    with warehouse.marts() as con:
        return compute_metrics(con, MetricsRequest(period=period, agents=None, as_of=as_of), settings)


def build_defs(marts: Sequence[dg.AssetKey]) -> dg.Definitions:
    """The export assets, after every mart of `marts`."""

    @dg.multi_asset(
        name="exports",
        specs=[
            dg.AssetSpec(
                "daily_csv_export", group_name=EXPORTS_GROUP, deps=marts, kinds={"csv"},
                description="exports/daily.csv: one row per day of the last 30 days (columns: docs/metric-definitions.md).",
            ),
            dg.AssetSpec(
                "full_json_export", group_name=EXPORTS_GROUP, deps=marts, kinds={"json"},
                description="exports/analytics.json: every metric of the last 30 days (schema 2.1).",
            ),
        ],
        pool=WAREHOUSE_POOL,
    )
    def exports(analytics: AnalyticsSettings, warehouse: Warehouse):
        """Both files from one metrics document, so they can never disagree."""
        settings = analytics.load()
        document = _document(settings, warehouse)
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

    return dg.Definitions(assets=[exports])
