"""Alert evaluation and delivery, downstream of the marts, in the `warehouse` pool.

`alert_evaluation` evaluates the rules file over the minute and day marts and queues new
events in the warehouse's outbox; `alert_deliveries` sends them. Neither fails the run for
a channel that is down or a broken rules file: their non-blocking WARN checks fail instead,
so the problem is visible in the UI and in `agent-analytics build`. Every log line and
metadata value passes through the redactor (no URL, key or secret).
"""


from collections.abc import Sequence
from datetime import datetime, timezone

import dagster as dg

from agent_analytics.alerts.deliver import deliver_pending
from agent_analytics.alerts.evaluate import evaluate
from agent_analytics.alerts.rules import AlertsConfigError, load_config
from agent_analytics.alerts.secrets import redactor_for
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import AnalyticsSettings, Warehouse

ALERTS_GROUP = "alerts"
RULES_CHECK = "rules_file_valid"
DELIVERY_CHECK = "channels_delivering"


def _config(settings):
    """(config or None, problem or None); no rules file is not a problem."""
    path = settings.alert_rules_path
    if not path.exists():
        return None, None
    try:
        return load_config(path), None
    except AlertsConfigError as exc:
        return None, str(exc)


def build_defs(marts: Sequence[dg.AssetKey]) -> dg.Definitions:
    """The alert assets, evaluated after every mart of `marts`."""

    @dg.asset(
        group_name=ALERTS_GROUP,
        deps=marts,
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        check_specs=[dg.AssetCheckSpec(RULES_CHECK, asset="alert_evaluation", blocking=False,
                                       description="The alert rules file parses and validates (WARN when not).")],
        description="Evaluates the alert rules over the minute and day marts; new alert.triggered / alert.resolved "
        "and analytics.daily_summary events go to the outbox (alerts.outbox).",
    )
    def alert_evaluation(context: dg.AssetExecutionContext, analytics: AnalyticsSettings,
                         warehouse: Warehouse) -> dg.MaterializeResult:
        settings = analytics.load()
        config, problem = _config(settings)
        redact = redactor_for(config)
        if config is None:
            if problem:
                context.log.warning(redact(f"alert rules not evaluated: {problem}"))
            metadata = {"rules_file": redact(str(settings.alert_rules_path)), "rules": 0,
                        "status": redact(problem or "no rules file")}
            return dg.MaterializeResult(
                metadata=metadata,
                check_results=[dg.AssetCheckResult(check_name=RULES_CHECK, passed=problem is None,
                                                   severity=dg.AssetCheckSeverity.WARN,
                                                   metadata={"problem": redact(problem or "none")})],
            )
        with warehouse.marts(read_only=False) as con:
            result = evaluate(con, config, settings, datetime.now(timezone.utc))
        for event_type, event_id in result.events:
            context.log.info(redact(f"queued {event_type} {event_id}"))
        return dg.MaterializeResult(
            metadata={
                "rules": result.rules,
                "scopes": result.scopes,
                "new_events": len(result.events),
                "daily_summaries": ", ".join(d.isoformat() for d in result.summaries) or "none",
                "evaluated_until": "no data" if result.watermark is None else result.watermark.isoformat() + "Z",
            },
            check_results=[dg.AssetCheckResult(check_name=RULES_CHECK, passed=True, severity=dg.AssetCheckSeverity.WARN)],
        )


    @dg.asset(
        group_name=ALERTS_GROUP,
        deps=[alert_evaluation],
        pool=WAREHOUSE_POOL,
        kinds={"duckdb"},
        check_specs=[dg.AssetCheckSpec(DELIVERY_CHECK, asset="alert_deliveries", blocking=False,
                                       description="Every channel accepted its events in this run and every channel's settings "
                                       "are usable (WARN naming the channel when not).")],
        description="Sends pending outbox events to their channels with timeouts, retries and backoff; every attempt "
        "is in alerts.deliveries. A failing channel never fails the run: its check warns.",
    )
    def alert_deliveries(context: dg.AssetExecutionContext, analytics: AnalyticsSettings) -> dg.MaterializeResult:
        settings = analytics.load()
        config, problem = _config(settings)
        redact = redactor_for(config)
        if config is None:
            return dg.MaterializeResult(
                metadata={"delivered": 0, "status": redact(problem or "no rules file")},
                check_results=[dg.AssetCheckResult(check_name=DELIVERY_CHECK, passed=True, severity=dg.AssetCheckSeverity.WARN)],
            )
        result = deliver_pending(settings.warehouse_path, config, redact)
        for channel, error in result.failing_channels.items():
            context.log.warning(redact(f"channel {channel} failed: {error}"))
        for problem in result.misconfigured_channels.values():
            context.log.warning(redact(f"misconfigured, its events wait: {problem}"))
        failing = "; ".join(f"{c}: {e}" for c, e in sorted(result.failing_channels.items())) or "none"
        misconfigured = "; ".join(p for _, p in sorted(result.misconfigured_channels.items())) or "none"
        metadata = {
            "delivered": result.delivered,
            "failed_attempts": result.failed_attempts,
            "still_pending": result.still_pending,
            "given_up": result.given_up,
            "failing_channels": redact(failing),
            "misconfigured_channels": redact(misconfigured),
        }
        check_metadata = {"failing_channels": redact(failing), "misconfigured_channels": redact(misconfigured),
                          "given_up": result.given_up}
        return dg.MaterializeResult(
            metadata=metadata,
            check_results=[dg.AssetCheckResult(check_name=DELIVERY_CHECK, passed=result.healthy,
                                               severity=dg.AssetCheckSeverity.WARN,
                                               metadata=check_metadata)],
        )

    return dg.Definitions(assets=[alert_evaluation, alert_deliveries])
